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

TOOLS = ("ours", "peer")
LABEL = {"ours": "this project", "peer": "frontrun 0.7.0"}
#: The groups of suite.py whose points fill the main tables; the others
#: have sections of their own.
CORE = ("explore", "db")
GROUPS = ("explore", "db", "libraries", "tracing", "sleep")
MODE_LABEL = {"first": "first failure", "exhaustive": "exhaustive", "bounded": "exhaustive, preemption bound 2"}
COLOR = {"ours": "tab:blue", "peer": "tab:orange"}


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


def time_ratio(p: dict[str, Any]) -> tuple[float, bool] | None:
    """0.7.0's seconds over this project's, and whether it is a lower bound."""
    ours, peer = p["tools"]["ours"], p["tools"].get("peer")
    if peer is None or ours["status"] != "ok" or peer["status"] not in ("ok", "capped"):
        return None
    return peer["seconds"] / ours["seconds"], peer["status"] == "capped"


def geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def fmt_s(x: float) -> str:
    return f"{x * 1000:.1f} ms" if x < 1 else f"{x:.2f} s"


def cell(t: dict[str, Any], what: str) -> str:
    if t["status"] in ("unsupported", "failed") and "executions" not in t:
        return t["status"]
    capped = t["status"] == "capped"
    if what == "executions":
        return f"≥ {t['executions']}" if capped else str(t["executions"])
    if what == "seconds":
        return f"≥ {fmt_s(t['seconds'])}" if capped else fmt_s(t["seconds"])
    if what == "rate":
        return f"{t['executions_per_s']:,.0f}"
    raise ValueError(what)


def note(t: dict[str, Any]) -> str:
    return f"{t['status']}: {t['reason']}" if t["status"] != "ok" else ""


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


def point_row(p: dict[str, Any], name: str | None = None) -> str:
    """One row of a per-point table: executions, time, ratio (this / 0.7.0)."""
    o, q = p["tools"]["ours"], p["tools"]["peer"]
    r = time_ratio(p)
    ratio = "n/a" if r is None else f"{'≥ ' if r[1] else ''}x{r[0]:.1f}"
    return (
        f"| {name or p['workload']} | {p['n']} | {cell(o, 'executions')} / {cell(q, 'executions')} "
        f"| {cell(o, 'seconds')} / {cell(q, 'seconds')} | {ratio} |"
    )


def bound_section(points: list[dict[str, Any]]) -> list[str]:
    """Full DPOR beside the default preemption bound, per point."""
    bounded = {(p["workload"], p["n"]): p for p in points if p["mode"] == "bounded"}
    full = {(p["workload"], p["n"]): p for p in points if p["mode"] == "exhaustive"}
    keys = [k for k in bounded if k in full]
    if not keys:
        return []
    lines = [
        "",
        "## The default preemption bound",
        "",
        "`explore_dpor` and 0.7.0's `explore` both default to `preemption_bound=2`. Each synthetic workload",
        "explored to the end with full DPOR (`None`) and within the default bound (2), both tools:",
        "executions and time, full / bounded. A bounded search explores a subset of the interleavings, so",
        "fewer executions than traces is expected there; more executions bounded than full is work the",
        "bound adds.",
        "",
        "| workload | N | optimal | executions, this project (full / bound 2) | executions, 0.7.0 (full / bound 2) "
        "| time, this project (full / bound 2) | time, 0.7.0 (full / bound 2) | ratio with bound 2 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for key in keys:
        f, b = full[key], bounded[key]
        r = time_ratio(b)
        ratio = "n/a" if r is None else f"{'≥ ' if r[1] else ''}x{r[0]:.1f}"
        cells = []
        for what in ("executions", "seconds"):
            for t in TOOLS:
                cells.append(f"{cell(f['tools'][t], what)} / {cell(b['tools'][t], what)}")
        best = f["optimal"] if f["optimal"] is not None else "?"
        lines.append(f"| {key[0]} | {key[1]} | {best} | " + " | ".join(cells) + f" | {ratio} |")
    more = [
        f"{k[0]}({k[1]})"
        for k in keys
        if all(x["tools"]["ours"]["status"] in ("ok", "capped") for x in (full[k], bounded[k]))
        and bounded[k]["tools"]["ours"]["executions"] > full[k]["tools"]["ours"]["executions"]
    ]
    lines += [
        "",
        (
            f"This project explores more executions within the bound than with full DPOR on {', '.join(more)}."
            if more
            else "This project never explores more executions within the bound than with full DPOR here."
        ),
    ]
    return lines


def library_section(points: list[dict[str, Any]]) -> list[str]:
    """The real-library races: first failure and the safe twin, per race."""
    pts = [p for p in points if p["group"] == "libraries"]
    if not pts:
        return []
    first = {p["workload"]: p for p in pts if p["mode"] == "first"}
    twins = {p["workload"].removesuffix("_safe"): p for p in pts if p["mode"] == "exhaustive"}
    lines = [
        "",
        "## Real races in third-party libraries",
        "",
        "Two threads call a library's public API; the lost update or check-then-act is in the library's own",
        "code under `site-packages` ([scripts/bench.d/libraries.py](../scripts/bench.d/libraries.py), the races",
        "of `tests/libraries/`, library versions pinned in `scripts/requirements-dev.txt` and installed in both",
        "tools' venvs). *First failure*: each tool's default options (`preemption_bound=2`,",
        "`stop_on_first=True`, `reproduce_on_failure=10`, `detect_io=True`), time to the first failure",
        "including the 10 replays. *Safe twin*: the same calls made thread-safe (the library's thread-safe",
        "form, or a lock the program takes), explored to the end with full DPOR and no replays. 0.7.0 does not",
        "trace `site-packages` by default; it is given `trace_packages` naming the library. A twin's pass",
        "counts only for a tool that found the race itself.",
        "",
        "| library | racy code | first failure: executions (this / 0.7.0) | time (this / 0.7.0) | ratio "
        "| safe twin: executions (this / 0.7.0) | time (this / 0.7.0) | ratio |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    ratios: dict[str, list[float]] = {"first": [], "exhaustive": []}
    left_out = []
    for name, p in first.items():
        row = [p.get("library", ""), p.get("where", name)]
        for q in (p, twins.get(name)):
            if q is None:
                row += ["not run", "", ""]
                continue
            o, peer = q["tools"]["ours"], q["tools"]["peer"]
            r = time_ratio(q)
            if r is not None:
                ratios[q["mode"]].append(r[0])
            else:
                why = [f"{LABEL[t]} {note(q['tools'][t])}" for t in TOOLS if q["tools"][t]["status"] != "ok"]
                left_out.append(f"- {q['workload']} ({MODE_LABEL[q['mode']]}): " + "; ".join(why) + ".")
            row += [
                f"{cell(o, 'executions')} / {cell(peer, 'executions')}",
                f"{cell(o, 'seconds')} / {cell(peer, 'seconds')}",
                "n/a" if r is None else f"x{r[0]:.1f}",
            ]
        lines.append("| " + " | ".join(str(c) for c in row) + " |")
    both = ratios["first"] + ratios["exhaustive"]
    lines.append("")
    for key, label in (("first", "first failure"), ("exhaustive", "safe twins, exhaustive")):
        if ratios[key]:
            lines.append(
                f"Geometric mean of the time ratios, {label}: x{geomean(ratios[key]):.1f} over {len(ratios[key])} "
                f"races (x{min(ratios[key]):.1f} to x{max(ratios[key]):.1f})."
            )
    if both:
        lines.append(f"Over both modes: x{geomean(both):.1f} over {len(both)} points.")
    if left_out:
        lines += ["", "Left out of the means (no clean result on both sides):", "", *left_out]
    return lines


def tracing_section(points: list[dict[str, Any]]) -> list[str]:
    """This project with the library traced (the default) and left out."""
    pts = [p for p in points if p["group"] == "tracing"]
    if not pts:
        return []
    lines = [
        "",
        "## What tracing third-party code costs",
        "",
        "This project traces the pure-Python code of third-party packages by default. Each library workload",
        "ran twice, in the same run: as by default, and with `skip_packages` naming the library's modules",
        '(`skip_packages=["cachetools", "cachetools.*"]`, say: the library left untraced, as before the',
        'default widened). `skip_packages=["*"]` would not do: it matches every module, the program\'s',
        "own included, and nothing would be traced. *private_caches* is no race: each thread fills a",
        "cachetools cache of its own, then adds to a shared total, so the library's code touches nothing",
        "shared and its tracing should cost time, not executions. The races and their twins are explored",
        "as in the section above. Cost: the default's time over the narrowed run's; on a race's first",
        "failure the default also finds and replays the failure, which the narrowed run does not see.",
        "",
        "| workload | N | mode | executions (traced / skipped) | time (traced / skipped) | cost "
        "| failure found (traced / skipped) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    costs = []
    missed = []
    for p in pts:
        d, n = p["tools"]["ours"], p["tools"]["ours_narrow"]
        cost = "n/a"
        if "seconds" in d and "seconds" in n and n["seconds"] > 0:
            c = d["seconds"] / n["seconds"]
            cost = f"x{c:.2f}"
            # Like for like: the same executions both ways (a run that
            # finds the race also replays it, one that sees nothing stops).
            if d["executions"] == n["executions"]:
                costs.append(c)
        if p["mode"] == "first" and d.get("failure_found") and not n.get("failure_found"):
            missed.append(p["workload"])
        found = " / ".join(("yes" if t.get("failure_found") else "no") if "executions" in t else "-" for t in (d, n))
        lines.append(
            f"| {p['workload']} | {p['n']} | {p['mode']} | {d.get('executions', d['status'])} / "
            f"{n.get('executions', n['status'])} | {cell(d, 'seconds') if 'seconds' in d else d['status']} / "
            f"{cell(n, 'seconds') if 'seconds' in n else n['status']} | {cost} | {found} |"
        )
    extra = [
        f"{p['workload']}({p['n']})"
        for p in pts
        if "executions" in p["tools"]["ours"]
        and "executions" in p["tools"]["ours_narrow"]
        and p["tools"]["ours"]["executions"] > p["tools"]["ours_narrow"]["executions"]
        and p["mode"] == "exhaustive"
        and not p["workload"].endswith("_safe")
    ]
    lines.append("")
    if costs:
        lines.append(
            f"Geometric mean of the cost over the {len(costs)} points that explore the same executions both "
            f"ways: x{geomean(costs):.2f} (x{min(costs):.2f} to x{max(costs):.2f})."
        )
    first = [p for p in pts if p["mode"] == "first"]
    if first:
        lines.append(
            f"Races found with the library traced and missed with it skipped: {len(missed)} of {len(first)}"
            + (f" ({', '.join(missed)})" if missed else "")
            + "."
        )
    lines.append(
        "Executions the library's internals add to a program whose only conflicts are its own: "
        + (", ".join(extra) if extra else "none")
        + "."
    )
    return lines


def sleep_section(points: list[dict[str, Any]]) -> list[str]:
    pts = [p for p in points if p["group"] == "sleep"]
    if not pts:
        return []
    sleep_ms = f"{pts[0]['sleep_s'] * 1000:g} ms" if pts[0].get("sleep_s") else "a fixed time"
    lines = [
        "",
        "## Workers that sleep",
        "",
        f"Each worker sleeps {sleep_ms} (`time.sleep`) between its read and its write (*sleepy_counter*, a",
        "lost update), or inside a lock (*sleepy_locked_counter*), explored as the synthetic workloads are",
        "(full DPOR, no replays). Both tools with their defaults for sleeps: 0.7.0 replaces `time.sleep`",
        "with a zero-time yield during an exploration (`patch_sleep=True`), this project sleeps for real",
        "(virtual time is future work), so these figures are the baseline for it.",
        "",
        "| workload | N | mode | optimal | executions (this / 0.7.0) | time (this / 0.7.0) | ratio |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for p in pts:
        row = point_row(p).split(" | ", 2)
        best = p["optimal"] if p["optimal"] is not None else "?"
        lines.append(f"{row[0]} | {row[1]} | {p['mode']} | {best} | {row[2]}")
    return lines


#: The bounds of issue-tracked targets, as scripts/bench.d/overhead.py checks them.
OVERHEAD_BOUNDS = {"import_ms": 30.0, "first_extra_ms": 20.0, "replay_ratio": 1.5}


def overhead_section(overhead: dict[str, Any] | None) -> list[str]:
    """Fixed and per-execution costs of this project alone (scripts/bench overhead)."""
    if not overhead:
        return []

    def within(value: float, bound: float) -> str:
        return "within" if value <= bound else "**over**"

    lines = ["", "## Fixed and per-execution costs", ""]
    lines.append(
        "This project only, medians of fresh processes (`scripts/bench overhead`), wall time with CPU time "
        "beside it; bytecode cached, as after a first run."
    )
    lines += ["", "| measure | wall | CPU | bound |", "| --- | --- | --- | --- |"]
    imp = overhead.get("import")
    if imp:
        b = OVERHEAD_BOUNDS["import_ms"]
        lines.append(
            f"| `import frontrun` + one `explore_dpor` | {imp['import_ms']:.1f} ms | {imp['import_cpu_ms']:.1f} ms "
            f"| {b:g} ms: {within(imp['import_ms'], b)} |"
        )
        lines.append(
            f"| the same, compiling the source (no bytecode cache) | {imp['from_source_ms']:.1f} ms "
            f"| {imp['from_source_cpu_ms']:.1f} ms | |"
        )
    first = overhead.get("first")
    if first:
        b = OVERHEAD_BOUNDS["first_extra_ms"]
        lines.append(
            f"| first `explore_dpor` minus the second, counter(2) | {first['first_extra_ms']:.1f} ms "
            f"| {first['first_extra_cpu_ms']:.1f} ms | {b:g} ms: {within(first['first_extra_ms'], b)} |"
        )
    for program, m in (overhead.get("replay") or {}).items():
        if "ratio" not in m:
            lines.append(f"| one replay, {program} | not measured: {m.get('unavailable', '?')} | | |")
            continue
        b = OVERHEAD_BOUNDS["replay_ratio"]
        lines.append(
            f"| one replay / one execution, {program} | {m['replay_ms']:.3f} / {m['execution_ms']:.3f} ms "
            f"(x{m['ratio']:.2f}) | | x{b:g}: {within(m['ratio'], b)} |"
        )
    for m in overhead.get("state") or []:
        lines.append(
            f"| readers({m['readers']}) per execution, {m['locks']} unused {m['kind']} locks in the state "
            f"| {m['per_execution_ms']:.3f} ms | {m['per_execution_cpu_ms']:.3f} ms | |"
        )
    return lines


def scale_rows(series: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {s["n"]: s for s in series}


def reach(series: list[dict[str, Any]]) -> int | None:
    done = [s["n"] for s in series if s["status"] == "ok"]
    return max(done) if done else None


def scale_section(scale: dict[str, Any] | None) -> list[str]:
    if not scale:
        return []
    cap = scale["meta"]["cap_s"]
    lines = [
        "",
        "## Scale",
        "",
        f"Exhaustive lastzero(N) and readers(N), full DPOR, N rising until a point does not finish within {cap:.0f} s",
        f"(`scripts/bench scale`, run {scale['meta']['started']}, one fresh process per point, one sample each).",
        "Executions per second and the process's peak RSS; a capped point shows what it reached (≥).",
    ]
    for name, runs in scale["series"].items():
        by = {t: scale_rows(runs.get(t, [])) for t in TOOLS}
        ns = sorted(set(by["ours"]) | set(by["peer"]))
        reaches = ", ".join(f"{LABEL[t]} N={reach(runs.get(t, [])) or 'none'}" for t in TOOLS)
        lines += [
            "",
            f"### {name}(N): largest N within {cap:.0f} s: {reaches}",
            "",
            "| N | executions (this / 0.7.0) | time (this / 0.7.0) | executions/s (this / 0.7.0) "
            "| peak RSS (this / 0.7.0) |",
            "| --- | --- | --- | --- | --- |",
        ]
        for n in ns:
            cells = {"executions": [], "time": [], "rate": [], "rss": []}
            for t in TOOLS:
                s = by[t].get(n)
                if s is None:
                    for v in cells.values():
                        v.append("-")
                    continue
                if "executions" not in s:
                    for v in cells.values():
                        v.append(s["status"])
                    continue
                ge = "≥ " if s["status"] == "capped" else ""
                cells["executions"].append(f"{ge}{s['executions']:,}")
                cells["time"].append(f"{ge}{fmt_s(s['seconds'])}")
                cells["rate"].append(f"{s.get('executions_per_s', 0):,.0f}")
                cells["rss"].append(f"{s['peak_rss_kib'] / 1024:.1f} MiB")
            lines.append(f"| {n} | " + " | ".join(" / ".join(v) for v in cells.values()) + " |")
    return lines


def behind_reason(p: dict[str, Any]) -> str:
    """Why this project took longer on a point, from the point's own figures."""
    o, q = p["tools"]["ours"], p["tools"]["peer"]
    replays = 10 if p["group"] == "libraries" and p["mode"] == "first" else 0
    runs_o, runs_q = o["executions"] + replays, q["executions"] + replays
    per_o, per_q = o["seconds"] / runs_o, q["seconds"] / runs_q
    counted = f" (executions and the {replays} replays)" if replays else ""
    why = []
    if o["executions"] > q["executions"]:
        why.append(f"it explores {o['executions']} executions to 0.7.0's {q['executions']}")
    if per_o > per_q:
        why.append(f"{per_o * 1000:.1f} ms per run{counted} against 0.7.0's {per_q * 1000:.1f} ms")
    if p["group"] == "sleep":
        n_sleeps = p["n"] * float(p.get("sleep_s", 0) or 0)
        if n_sleeps:
            why.append(
                f"0.7.0 turns time.sleep into a zero-time yield, this project sleeps: the {p['n']} workers' sleeps "
                f"add up to {n_sleeps * 1000:.0f} ms per execution"
            )
        else:
            why.append("0.7.0 turns time.sleep into a zero-time yield, this project sleeps")
    if not why:
        why.append("fewer executions and less time per run than 0.7.0 on paper; within the noise of the run")
    return "; ".join(why)


def behind_section(points: list[dict[str, Any]], scale: dict[str, Any] | None) -> list[str]:
    behind = []
    for p in points:
        if p["group"] == "tracing":
            continue
        o = p["tools"]["ours"]
        r = time_ratio(p)
        where = f"{p['workload']}({p['n']}, {MODE_LABEL[p['mode']]})"
        if o["status"] != "ok":
            behind.append(f"- {where}: {o['status']}: {o['reason']}.")
        elif r is not None and r[0] < 1:
            behind.append(f"- {where}: x{r[0]:.2f}: {behind_reason(p)}.")
    for name, runs in (scale or {}).get("series", {}).items():
        ours, peer = reach(runs.get("ours", [])), reach(runs.get("peer", []))
        if peer is not None and (ours is None or ours < peer):
            behind.append(f"- Scale, {name}: this project reaches N={ours}, 0.7.0 N={peer}.")
    lines = [
        "",
        "## Where this project is not ahead",
        "",
        "Every point of this run where this project took longer than 0.7.0 (ratio below 1), or gave no clean",
        "result, with the reason read from the point's figures.",
        "",
    ]
    return lines + (behind or ["None: this project is faster on every point it runs."])


def main() -> None:
    root = Path(sys.argv[1])
    data = load(root)
    (root / "docs" / "performance.json").write_text(json.dumps(data, indent=1) + "\n")
    plot(data, root / "docs" / "img" / "performance.png")
    (root / "docs" / "performance.md").write_text(markdown(data))
    print("report: wrote docs/performance.md, docs/performance.json, docs/img/performance.png")


if __name__ == "__main__":
    main()
