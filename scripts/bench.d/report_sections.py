"""The sections of docs/performance.md after the main tables, one function
each (report.py puts them in order): the default preemption bound, the
library races, tracing with and without the libraries, sleeping workers,
the scale curve, the fixed costs, and the points where this project is not
ahead."""

from __future__ import annotations

from typing import Any

from report_format import LABEL, MODE_LABEL, TOOLS, cell, fmt_s, geomean, note, point_row, time_ratio


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


def _mode_table(pts: list[dict[str, Any]]) -> list[str]:
    """A table of points with their mode and optimum, then the reason of
    each point a tool gave no clean result for."""
    lines = [
        "",
        "| workload | N | mode | optimal | executions (this / 0.7.0) | time (this / 0.7.0) | ratio |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for p in pts:
        row = point_row(p).split(" | ", 2)
        best = p["optimal"] if p["optimal"] is not None else "?"
        lines.append(f"{row[0]} | {row[1]} | {p['mode']} | {best} | {row[2]}")
    notes = [
        f"- {p['workload']}({p['n']}, {p['mode']}), {LABEL[tool]}: {p['tools'][tool]['reason']}."
        for p in pts
        for tool in TOOLS
        if p["tools"][tool]["status"] != "ok" and p["tools"][tool].get("reason")
    ]
    if notes:
        lines += ["", "Points without a clean result:", "", *notes]
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
        "with a zero-time yield during an exploration (`patch_sleep=True`); this project runs the workers",
        "on a virtual clock (`virtual_time=True`): a sleep costs no wall time and ends the worker's step in a",
        "yield.",
    ]
    lines += _mode_table(pts)
    return lines


def async_section(points: list[dict[str, Any]]) -> list[str]:
    pts = [p for p in points if p["group"] == "async"]
    if not pts:
        return []
    lines = [
        "",
        "## asyncio tasks",
        "",
        "The same kinds of workload as asyncio tasks: *async_counter* (each task reads, awaits",
        "`asyncio.sleep(0)`, then writes: a lost update), *async_locked_counter* (the same under one",
        "`asyncio.Lock`) and *async_gather_counter* (one task gathers N such increments, so the",
        "increments run in tasks that task creates). This project's `explore_async` against 0.7.0's",
        '`explore(strategy="dpor")` of the coroutine functions, full DPOR, no replays.',
    ]
    lines += _mode_table(pts)
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
