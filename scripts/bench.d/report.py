"""Write docs/performance.json, docs/performance.md and docs/img/performance.png
from the results of `scripts/bench explore`, `db`, `libraries`, `tracing`,
`sleep`, `scale` and `memory` (and the printed output of `scripts/bench
engine` and `scripts/bench preload`).

    python report.py REPO_ROOT

Runs in the plot venv (matplotlib); reads .bench/results-*.json. Every
figure and every remark on the page, the list of points where this project
is not ahead included, is computed from those results.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from report_format import (
    COLOR,
    CORE,
    GROUPS,
    LABEL,
    MODE_LABEL,
    TOOLS,
    cell,
    fmt_s,
    note,
    time_ratio,
)
from report_sections import (
    async_section,
    behind_section,
    bound_section,
    library_section,
    overhead_section,
    scale_section,
    sleep_section,
    tracing_section,
)


def load(root: Path) -> dict[str, Any]:
    merged: dict[str, Any] = {"runs": {}, "points": [], "per_instruction": {}, "components": {}}
    for group in GROUPS:
        path = root / ".bench" / f"results-{group}.json"
        if not path.exists():
            continue
        data = json.loads(path.read_text())
        merged["runs"][group] = data["meta"]
        for point in data["points"]:
            for tool in point["tools"].values():
                for sample in tool.get("samples", []):
                    # Tracebacks name files on the machine that ran the suite.
                    sample.pop("traceback", None)
        for point in data["points"]:
            point.setdefault("group", group)
        merged["points"] += data["points"]
        if group == "explore":
            merged["per_instruction"] = data["per_instruction"]
    scale = root / ".bench" / "results-scale.json"
    if scale.exists():
        merged["scale"] = json.loads(scale.read_text())
        for runs in merged["scale"]["series"].values():
            for pts in runs.values():
                for sample in pts:
                    sample.pop("traceback", None)
    memory = root / ".bench" / "results-memory.json"
    if memory.exists():
        merged["memory"] = json.loads(memory.read_text())
    overhead = root / ".bench" / "results-overhead.json"
    if overhead.exists():
        merged["overhead"] = json.loads(overhead.read_text())
    for component in ("engine", "preload"):
        path = root / ".bench" / f"results-{component}.txt"
        if path.exists():
            merged["components"][component] = path.read_text()
    if not merged["points"]:
        sys.exit("report: no results in .bench/ (run scripts/bench explore, db, libraries, ... first)")
    return merged


def summary_rows(points: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    """(workload and mode, ratio, executions at the largest N, remarks)."""
    rows = []
    keys: list[tuple[str, str]] = []
    for p in points:
        if (p["workload"], p["mode"]) not in keys:
            keys.append((p["workload"], p["mode"]))
    for name, mode in keys:
        pts = [p for p in points if p["workload"] == name and p["mode"] == mode]
        ratios = [r for r in (time_ratio(p) for p in pts) if r is not None]
        if ratios:
            geo = math.exp(sum(math.log(r) for r, _ in ratios) / len(ratios))
            bound = any(b for _, b in ratios)
            lo, hi = min(r for r, _ in ratios), max(r for r, _ in ratios)
            ratio = f"{'≥ ' if bound else ''}x{geo:.1f}" + (f" (x{lo:.1f} to x{hi:.1f})" if len(ratios) > 1 else "")
        else:
            ratio = "n/a"
        last = pts[-1]
        best = last["optimal"] if last["optimal"] is not None else "?"
        execs = " / ".join(cell(last["tools"][t], "executions") for t in TOOLS)
        execs += f" / {best}" if mode == "exhaustive" else f" (of {best} traces)"
        remarks = []
        for t in TOOLS:
            capped = [str(p["n"]) for p in pts if p["tools"][t]["status"] == "capped"]
            if capped:
                remarks.append(f"{LABEL[t]} hit the time cap at N={','.join(capped)}")
            extra = [
                str(p["n"])
                for p in pts
                if p["mode"] == "exhaustive"
                and p["optimal"] is not None
                and p["tools"][t]["status"] in ("ok", "capped")
                and p["tools"][t]["executions"] > p["optimal"]
            ]
            if extra:
                remarks.append(f"{LABEL[t]} explores more executions than there are traces at N={','.join(extra)}")
            others = sorted({note(p["tools"][t]) for p in pts if p["tools"][t]["status"] not in ("ok", "capped")})
            remarks += [f"{LABEL[t]} {x}" for x in others]
        label = f"{name} ({MODE_LABEL[mode]})"
        rows.append((label, ratio, f"N={last['n']}: {execs}", "; ".join(remarks)))
    return rows


def plot(data: dict[str, Any], out: Path) -> None:
    # Imported here: the rest of this module (the page) needs no matplotlib.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [p for p in data["points"] if p["group"] in CORE]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    for ax, name in zip(axes[:2], ("lastzero", "readers"), strict=True):
        pts = [p for p in points if p["workload"] == name and p["mode"] == "exhaustive"]
        ns = [p["n"] for p in pts]
        for tool, style, size in (("peer", "s-", 9), ("ours", "o-", 6)):
            xs = [p["n"] for p in pts if "executions" in p["tools"][tool]]
            ys = [p["tools"][tool]["executions"] for p in pts if "executions" in p["tools"][tool]]
            ax.plot(xs, ys, style, markersize=size, label=LABEL[tool], color=COLOR[tool])
            capped = [(p["n"], p["tools"][tool]["executions"]) for p in pts if p["tools"][tool]["status"] == "capped"]
            if capped:
                ax.plot(*zip(*capped, strict=True), "rx", markersize=10, label=f"{LABEL[tool]}: hit the time cap (≥)")
        ax.plot(ns, [p["optimal"] for p in pts], "k--", linewidth=1.5, zorder=5, label="optimal (traces)")
        ax.set_yscale("log")
        ax.set_xticks(ns)
        ax.set_xlabel("N")
        ax.set_ylabel("executions explored")
        ax.set_title(f"{name}(N), exhaustive")
        ax.legend(fontsize=8)
    ax = axes[2]
    chosen = []
    for p in points:
        if p["mode"] != "exhaustive":
            continue
        chosen = [q for q in chosen if q["workload"] != p["workload"]] + [p]  # largest N
    labels = [f"{p['workload']}({p['n']})" for p in chosen]
    width = 0.4
    ax.set_yscale("log")
    missing = []
    for k, tool in enumerate(TOOLS):
        usable = [p["tools"][tool]["status"] in ("ok", "capped") for p in chosen]
        vals = [p["tools"][tool].get("executions_per_s") if ok else None for p, ok in zip(chosen, usable, strict=True)]
        xs = [i + (k - 0.5) * width for i in range(len(chosen))]
        ax.bar(xs, [v if v else float("nan") for v in vals], width, label=LABEL[tool], color=COLOR[tool])
        missing += [(x, p["tools"][tool]["status"]) for x, v, p in zip(xs, vals, chosen, strict=True) if not v]
    bottom = ax.get_ylim()[0]
    for x, status in missing:
        ax.text(x, bottom * 1.3, status, rotation=90, ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(chosen)))
    ax.set_xticklabels(labels, rotation=40, ha="right", fontsize=8)
    ax.set_ylabel("executions per second")
    ax.set_title("exploration rate (largest N of each workload)")
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)


def markdown(data: dict[str, Any]) -> str:
    everything = data["points"]
    points = [p for p in everything if p["group"] in CORE]
    runs = data["runs"]
    meta = next(iter(runs.values()))
    lines = [
        "# Performance: this project against frontrun 0.7.0",
        "",
        "<!-- Generated by scripts/bench.d/report.py from docs/performance.json; rerun, do not edit. -->",
        "",
        f"Every workload below ran under this project's `explore_dpor` and under {meta['peer']}",
        '(`frontrun.explore(strategy="dpor")`), in the same run, on the same interpreter, with the same',
        "Python code for the threads ([scripts/bench.d/workloads.py](../scripts/bench.d/workloads.py)).",
        "The synthetic and database workloads run with full DPOR (`preemption_bound=None`) and no replays",
        "of failures, and the synthetic ones once more within the default preemption bound (2); the",
        "real-library races run with each tool's defaults (see their section). The *optimal* column is the",
        "number of Mazurkiewicz traces: what an optimal DPOR explores. It is computed, not quoted, by",
        "enumerating a model of each workload with sleep sets",
        "([scripts/bench.d/optimal.py](../scripts/bench.d/optimal.py), checked against brute-force",
        "enumeration in `tests/bench/`).",
        "",
        "Machine: "
        + meta["machine"]
        + f", Python {meta['python']}; "
        + ", ".join(
            f"`{g}` run started {m['started']} and took {m.get('total_seconds', 0):.0f} s" for g, m in runs.items()
        )
        + f". Medians of up to {meta['reps']} samples per tool and point (one sample for points slower than"
        f" {meta['slow_s']:.0f} s), each in a fresh process, the two tools alternating; a per-tool cap of"
        f" {meta['cap_s']:.0f} s per point (`total_timeout`), a capped point shows the executions reached (≥).",
        "The machine is shared with other work, so single timings are noisy; ratios of the same run are",
        "the meaningful figures.",
        "",
        "![executions explored and exploration rate](img/performance.png)",
        "",
        "## Ratios per workload",
        "",
        "Time ratio: frontrun 0.7.0's wall time over this project's for the same point (above 1: this project",
        "is faster), geometric mean over the workload's points, range in brackets; ≥ when 0.7.0 hit the cap.",
        "Executions at the largest N: this project / 0.7.0 / optimal.",
        "",
        "| workload | time ratio | executions at the largest N | remarks |",
        "| --- | --- | --- | --- |",
    ]
    for row in summary_rows(points):
        lines.append("| " + " | ".join(row) + " |")
    lines += [
        "",
        "## Every point",
        "",
        "In first-failure mode (`stop_on_first=True`) the executions are those run up to and including",
        "the first failing one, and the time is the time to the first failure. Failing executions: how",
        "many explored executions broke the invariant.",
        "",
        "| workload | N | mode | optimal | executions (this / 0.7.0) | time (this / 0.7.0) "
        "| executions/s (this / 0.7.0) | failing executions (this / 0.7.0) | ratio |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for p in points:
        o, q = p["tools"]["ours"], p["tools"]["peer"]
        r = time_ratio(p)
        ratio = "n/a" if r is None else f"{'≥ ' if r[1] else ''}x{r[0]:.1f}"
        rate = (
            f"{cell(o, 'rate')} / {cell(q, 'rate')}"
            if "executions_per_s" in o and "executions_per_s" in q
            else f"{cell(o, 'rate') if 'executions_per_s' in o else o['status']} / "
            f"{cell(q, 'rate') if 'executions_per_s' in q else q['status']}"
        )
        lines.append(
            f"| {p['workload']} | {p['n']} | {p['mode']} | {p['optimal'] if p['optimal'] is not None else '?'} | "
            f"{cell(o, 'executions')} / {cell(q, 'executions')} | {cell(o, 'seconds')} / {cell(q, 'seconds')} | "
            f"{rate} | {o.get('failing_executions', '-')} / {q.get('failing_executions', '-')} | {ratio} |"
        )
    pi = data["per_instruction"]
    if pi:
        lines += [
            "",
            "## Cost per traced instruction",
            "",
            "From the independent-threads workload (8 threads, each incrementing its own object): the whole",
            "exploration over the instructions the threads execute, and the marginal cost, from the",
            "difference between 500 and 50 increments per thread.",
            "",
            "| | this project | frontrun 0.7.0 | ratio |",
            "| --- | --- | --- | --- |",
        ]
        for key, label in (
            ("whole_run_ns", "whole run, ns per instruction"),
            ("marginal_ns", "marginal, ns per instruction"),
        ):
            a, b = pi.get("ours", {}).get(key), pi.get("peer", {}).get(key)
            ratio = f"x{b / a:.1f}" if a and b else "n/a"
            lines.append(f"| {label} | {a:.0f} | {b:.0f} | {ratio} |" if a and b else f"| {label} | {a} | {b} | n/a |")
    lz = [p for p in points if p["workload"] == "lastzero" and p["n"] == 6 and p["mode"] == "exhaustive"]
    if lz:
        p = lz[0]
        lines += [
            "",
            "## Memory",
            "",
            "Peak resident set size of the process running an exhaustive lastzero(6) exploration, and before",
            "the exploration started (interpreter and tool imported).",
            "",
            "| | peak RSS | before exploring | executions |",
            "| --- | --- | --- | --- |",
        ]
        for tool in TOOLS:
            t = p["tools"][tool]
            if "peak_rss_kib" in t:
                extra = " (hit the cap: the exploration was not finished)" if t["status"] == "capped" else ""
                lines.append(
                    f"| {LABEL[tool]} | {t['peak_rss_kib'] / 1024:.1f} MiB "
                    f"| {t['peak_rss_kib_before'] / 1024:.1f} MiB | "
                    f"{cell(t, 'executions')}{extra} |"
                )
            else:
                lines.append(f"| {LABEL[tool]} | {t['status']} | | |")
    mem = data.get("memory")
    if mem:
        if not lz:
            lines += ["", "## Memory"]
        lines += [
            "",
            "### Long explorations",
            "",
            "Peak resident set size of exhaustive lastzero(N) explorations of this project, one fresh process",
            f"per N (`scripts/bench memory`, run {mem['meta']['started']}, Python {mem['meta']['python']}).",
            "",
            "| N | executions | time | peak RSS | before exploring | growth per 1,000 executions |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for m in mem["points"]:
            if "error" in m:
                lines.append(f"| {m['n']} | {m['error']} | | | | |")
                continue
            grown = (m["peak_rss_kib"] - m["peak_rss_kib_before"]) / 1024
            per = f"{grown / m['executions'] * 1000:.2f} MiB" if m["executions"] else "n/a"
            lines.append(
                f"| {m['n']} | {m['executions']:,} | {fmt_s(m['seconds'])} | {m['peak_rss_kib'] / 1024:.1f} MiB "
                f"| {m['peak_rss_kib_before'] / 1024:.1f} MiB | {per} |"
            )
    lines += bound_section(points)
    lines += library_section(everything)
    lines += tracing_section(everything)
    lines += sleep_section(everything)
    lines += async_section(everything)
    lines += scale_section(data.get("scale"))
    lines += overhead_section(data.get("overhead"))
    lines += behind_section(everything, data.get("scale"))
    for component, title in (("engine", "engine (Rust, no Python)"), ("preload", "preload library and ring")):
        text = data.get("components", {}).get(component)
        if text:
            lines += ["", f"## Microbenchmarks: {title}", "", f"Output of `scripts/bench {component}`:", "", "```text"]
            lines += [line for line in text.splitlines() if line.strip() and not line.startswith("###")]
            lines += ["```"]
    lines += [
        "",
        "## Rerunning",
        "",
        "```sh",
        "scripts/bench all      # builds .venv (scripts/setup), microbenchmarks, everything above",
        "scripts/bench explore  # only the shared-memory workloads (.bench/results-explore.json)",
        "scripts/bench db       # only the PostgreSQL workloads (.bench/results-db.json)",
        "scripts/bench memory   # peak RSS of lastzero(2..13), this project only (.bench/results-memory.json)",
        "scripts/bench libraries  # real library races, first failure and safe twins (.bench/results-libraries.json)",
        "scripts/bench tracing  # library traced vs skip_packages, this project only (.bench/results-tracing.json)",
        "scripts/bench sleep    # workers that call time.sleep (.bench/results-sleep.json)",
        "scripts/bench async    # asyncio tasks (.bench/results-async.json)",
        "scripts/bench scale    # lastzero(N), readers(N) up to the cap (.bench/results-scale.json)",
        "scripts/bench overhead # import, first call, replay and state-walk costs (.bench/results-overhead.json)",
        "scripts/bench report   # rewrite this page, docs/performance.json and the plot",
        "```",
        "",
        "frontrun 0.7.0, psycopg2 and the pinned libraries are installed from PyPI into `.bench/venv-peer`",
        "(the libraries into `.venv` too, where `scripts/setup` already puts them), matplotlib into",
        "`.bench/venv-plot`. `REPS` (samples per point, default 3), `CAP_S`",
        "(per-tool cap per point, default 60) and `SLOW_S` (points slower than this are sampled once,",
        "default 3) tune the run, `SCALE_CAP_S` (default 60) and `SCALE_N_MAX` (default 24) the Scale",
        "section; `FRONTRUN_BENCH_PG_DSN` names the PostgreSQL server. A tool that cannot run",
        "a workload is reported as `unsupported` with the reason; a tool that explores fewer executions",
        "than there are traces, misses the bug or raises a false alarm is reported as `failed`.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    root = Path(sys.argv[1])
    data = load(root)
    (root / "docs" / "performance.json").write_text(json.dumps(data, indent=1) + "\n")
    plot(data, root / "docs" / "img" / "performance.png")
    (root / "docs" / "performance.md").write_text(markdown(data))
    print("report: wrote docs/performance.md, docs/performance.json, docs/img/performance.png")


if __name__ == "__main__":
    main()
