"""Side-by-side benchmark driver: this repository's frontrun against PyPI
frontrun 0.7.0, with the optimal execution count beside them.

    python suite.py OUR_PYTHON PEER_PYTHON OUT_JSON GROUP [GROUP...]

GROUP is "explore" (shared-memory workloads, full DPOR and within the
default preemption bound), "db" (PostgreSQL under LD_PRELOAD), "libraries"
(real races in third-party libraries, libraries.py), "tracing" (this
project only: the library workloads with their library traced, as by
default, and left out with ``skip_packages``), "sleep" (workers that
call time.sleep) or "async" (asyncio tasks). Every sample runs in a fresh process (`workloads.py`);
the two tools alternate within each repetition, and the medians are
compared.

    REPS       repetitions per point and tool (default 3); a point whose first
               sample takes longer than SLOW_S seconds is sampled once
    CAP_S      per-tool time cap per point (default 60 s); a point that hits
               it is reported as capped with the executions reached
    SLOW_S     see REPS (default 3 s)

Reports `unsupported` or `failed` with the reason for a tool/workload pair
that cannot run or gives a wrong answer, rather than dropping the point.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import libraries  # noqa: E402
import optimal  # noqa: E402
import workloads  # noqa: E402

TOOLS = ("ours", "peer")
# The pair of "tools" a group compares, when it is not this project and the
# peer: the tracing group compares this project with itself, the library
# traced (by default) and left out (skip_packages).
GROUP_TOOLS = {"tracing": ("ours", "ours_narrow")}

# (workload, N values, modes). Workloads that never fail have no
# first-failure mode.
GROUPS: dict[str, list[tuple[str, list[int], list[str]]]] = {
    "explore": [
        ("counter", [2, 3, 4], ["exhaustive", "first"]),
        ("readers", list(range(2, 11)), ["exhaustive"]),
        ("lastzero", list(range(2, 7)), ["exhaustive"]),
        ("independent", [8], ["exhaustive"]),
        ("independent_marginal", [8], ["exhaustive"]),
        ("locked_counter", [3], ["exhaustive"]),
        ("abba", [2], ["exhaustive", "first"]),
        # The same within the default preemption bound (2).
        ("counter", [2, 3, 4], ["bounded"]),
        ("readers", list(range(2, 11)), ["bounded"]),
        ("lastzero", list(range(2, 7)), ["bounded"]),
        ("independent", [8], ["bounded"]),
        ("locked_counter", [3], ["bounded"]),
        ("abba", [2], ["bounded"]),
    ],
    # Each race to its first failure with the tools' defaults, then its
    # safe twin explored to exhaustion.
    "libraries": [(name, [2], ["first"]) for name in libraries.RACES]
    + [(f"{name}_safe", [2], ["exhaustive"]) for name in libraries.RACES],
    "tracing": [("private_caches", [2, 3, 4], ["exhaustive"])]
    + [(name, [2], ["first"]) for name in libraries.RACES]
    + [(f"{name}_safe", [2], ["exhaustive"]) for name in libraries.RACES],
    "sleep": [
        ("sleepy_counter", [2, 3], ["exhaustive", "first"]),
        ("sleepy_locked_counter", [2, 3], ["exhaustive"]),
    ],
    # asyncio tasks: this project's explore_async, 0.7.0's explore of
    # coroutine functions.
    "async": [
        ("async_counter", [2, 3, 4], ["exhaustive", "first"]),
        ("async_locked_counter", [2, 3, 4], ["exhaustive"]),
        ("async_gather_counter", [2, 3], ["exhaustive", "first"]),
    ],
    "db": [
        ("pg_lost_update", [2], ["exhaustive", "first"]),
        ("pg_different_rows", [2], ["exhaustive"]),
        ("pg_tls_lost_update", [2], ["exhaustive", "first"]),
        ("pg_tls_different_rows", [2], ["exhaustive"]),
        ("pg_repeatable_read_rows", [2], ["exhaustive"]),
        ("pg_connect_in_worker_rows", [2], ["exhaustive"]),
    ],
}
# Whether the invariant of a workload can break (a race or deadlock exists).
EXPECT_FAILURE = {
    "counter": True,
    "abba": True,
    "pg_lost_update": True,
    "pg_tls_lost_update": True,
    "sleepy_counter": True,
    "async_counter": True,
    "async_gather_counter": True,
    **{name: True for name in libraries.RACES},
}
# A conflict-free workload and the racy one that shows whether the tool
# sees the accesses at all.
TWINS = {
    "pg_different_rows": "pg_lost_update",
    "pg_tls_different_rows": "pg_tls_lost_update",
    "pg_repeatable_read_rows": "pg_lost_update",
    "pg_connect_in_worker_rows": "pg_lost_update",
    **{f"{name}_safe": name for name in libraries.RACES},
}

DESCRIPTIONS = {
    "counter": "N threads each read then write one attribute (lost update)",
    "readers": "one writer and N readers of one attribute",
    "lastzero": "one thread scans a list for its last zero while N threads each write a[j] = a[j-1] + 1",
    "independent": "N threads, each doing 50 increments of its own object's attribute",
    "independent_marginal": "the same with 500 increments each (marginal cost per traced instruction)",
    "locked_counter": "N threads increment one attribute under one threading.Lock",
    "abba": "two threads take two locks in opposite orders (deadlock)",
    "pg_lost_update": "N clients SELECT then UPDATE the same PostgreSQL row (autocommit), under LD_PRELOAD",
    "pg_different_rows": "the same, each client on its own row (no conflict), under LD_PRELOAD",
    "pg_tls_lost_update": "pg_lost_update with TLS required (sslmode=require)",
    "pg_tls_different_rows": "pg_different_rows with TLS required (sslmode=require)",
    "pg_repeatable_read_rows": "each client on its own row inside BEGIN ISOLATION LEVEL REPEATABLE READ ... COMMIT",
    "pg_connect_in_worker_rows": "each client opens its own connection in the worker, then updates its own row",
    "sleepy_counter": f"counter with a time.sleep({workloads.SLEEP_S}) between the read and the write",
    "sleepy_locked_counter": f"locked_counter with a time.sleep({workloads.SLEEP_S}) inside the lock",
    "async_counter": "N asyncio tasks each read an attribute, await asyncio.sleep(0), then write it (lost update)",
    "async_locked_counter": "the same under one asyncio.Lock",
    "async_gather_counter": "one task gathers N such increments (tasks a task creates)",
    "private_caches": libraries.PRIVATE_CACHES,
    **{name: f"{r.library}: {r.where} (2 threads)" for name, r in libraries.RACES.items()},
    **{f"{name}_safe": f"{r.library}: {r.where}, made thread-safe" for name, r in libraries.RACES.items()},
}


def sample(exe: str, tool: str, name: str, n: int, mode: str, cap: float, env: dict[str, str]) -> dict[str, Any]:
    cmd = [exe, str(HERE / "workloads.py"), tool, name, str(n), mode, str(cap)]
    start = time.perf_counter()
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, cwd="/tmp", env=env, timeout=cap + 20)
    except subprocess.TimeoutExpired:
        return {"error": f"killed: no result {cap + 20:.0f} s after start (the tool ignored total_timeout)"}
    wall = time.perf_counter() - start
    lines = out.stdout.strip().splitlines()
    try:
        record = json.loads(lines[-1])
    except (IndexError, ValueError):
        tail = (out.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit status {out.returncode}: {tail[:300]}"}
    record["process_seconds"] = wall
    return record


def summarize(
    name: str, n: int, mode: str, cap: float, samples: list[dict[str, Any]], best: int | None
) -> dict[str, Any]:
    """Status, medians and the reason for anything that is not a clean result."""
    first = samples[0]
    if "unsupported" in first:
        return {"status": "unsupported", "reason": first["unsupported"], "samples": samples}
    errors = [s for s in samples if "error" in s]
    if errors:
        return {"status": "failed", "reason": errors[0]["error"], "samples": samples}
    secs = statistics.median(s["seconds"] for s in samples)
    execs = max(s["executions"] for s in samples)
    capped = any(s["seconds"] >= 0.97 * cap for s in samples) or (
        mode != "first" and any(s.get("exhausted") is False for s in samples)
    )
    found = [s for s in samples if s["property_holds"] is False]
    out: dict[str, Any] = {
        "status": "capped" if capped else "ok",
        "executions": execs,
        "seconds": secs,
        "executions_per_s": execs / secs if secs > 0 else None,
        "failure_found": bool(found),
        "failing_executions": max(s.get("failures", 0) for s in samples),
        "peak_rss_kib": max(s["peak_rss_kib"] for s in samples),
        "peak_rss_kib_before": max(s["peak_rss_kib_before"] for s in samples),
        "samples": samples,
    }
    if "instructions" in first:
        out["instructions"] = first["instructions"]
    if capped:
        out["reason"] = f"hit the {cap:.0f} s cap after {execs} executions"
        return out
    for key in ("native_events", "events_lost"):
        if key in first:
            out[key] = max(s.get(key, 0) for s in samples)
    stuck = [s for s in samples if s.get("inconclusive")]
    if stuck:
        out["status"] = "failed"
        out["reason"] = f"{stuck[0]['inconclusive']} inconclusive executions: {stuck[0]['inconclusive_reason']}"
        return out
    expect_failure = EXPECT_FAILURE.get(name, False)
    if mode != "first":
        # Within a preemption bound, fewer executions than traces is the
        # bound at work, not blindness.
        if mode == "exhaustive" and best is not None and execs < best:
            out["status"] = "failed"
            out["reason"] = (
                f"explored {execs} execution{'s' if execs != 1 else ''}, fewer than the {best} traces: "
                "the conflicts are not seen"
                + (" (the failure it reported came from uncontrolled concurrency)" if found else "")
            )
        elif expect_failure and not found:
            out["status"] = "failed"
            out["reason"] = f"missed the bug: explored {execs} executions and reported that the invariant holds"
        elif not expect_failure and found:
            out["status"] = "failed"
            out["reason"] = "false alarm: reported a failure of an invariant that always holds"
    elif not found:
        out["status"] = "failed"
        out["reason"] = f"no failure found in {execs} executions"
    return out


def run_point(
    name: str,
    n: int,
    mode: str,
    exes: dict[str, str],
    envs: dict[str, dict[str, str]],
    reps: int,
    cap: float,
    slow: float,
    tools: tuple[str, ...] = TOOLS,
) -> dict[str, dict[str, Any]]:
    samples: dict[str, list[dict[str, Any]]] = {t: [] for t in tools}
    done: set[str] = set()
    for rep in range(reps):
        order = tools if rep % 2 == 0 else tools[::-1]
        for tool in order:
            if tool in done:
                continue
            s = sample(exes[tool], tool, name, n, mode, cap, envs[tool])
            samples[tool].append(s)
            if "seconds" not in s or s["seconds"] > slow:
                done.add(tool)  # unsupported, broken or slow: one sample is enough
    return samples


def preload_env(tool: str, exe: str, base: dict[str, str]) -> dict[str, str]:
    """Environment running the tool's own preload library."""
    if tool == "ours":
        lib = subprocess.run(
            [str(Path(exe).parent / "frontrun"), "--preload-path"], capture_output=True, text=True, check=True
        ).stdout.strip()
    else:
        lib = subprocess.run(
            [
                exe,
                "-c",
                "import frontrun, os; print(os.path.join(os.path.dirname(frontrun.__file__), 'libfrontrun_io.so'))",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    return {**base, "LD_PRELOAD": lib}


def main() -> None:
    ours_py, peer_py, out_json = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    groups = sys.argv[4:]
    reps = int(os.environ.get("REPS", "3"))
    cap = float(os.environ.get("CAP_S", "60"))
    slow = float(os.environ.get("SLOW_S", "3"))
    exes = {"ours": ours_py, "ours_narrow": ours_py, "peer": peer_py}
    base = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    plain_env = {t: base for t in exes}
    db_env = {t: preload_env(t, exes[t], base) for t in TOOLS} if "db" in groups else plain_env
    peer_version = subprocess.run(
        [peer_py, "-c", "import importlib.metadata as m; print(m.version('frontrun'))"], capture_output=True, text=True
    ).stdout.strip()
    results: dict[str, Any] = {
        "meta": {
            "python": platform.python_version(),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}",
            "peer": f"frontrun {peer_version} (PyPI)",
            "reps": reps,
            "cap_s": cap,
            "slow_s": slow,
            "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "groups": groups,
        },
        "points": [],
    }
    started = time.perf_counter()
    for group in groups:
        pair = GROUP_TOOLS.get(group, TOOLS)
        print(f"\n{'workload':<30}{'N':>3} {'mode':<11}{'optimal':>8} | {pair[0]:>30} | {pair[1]:>30} | time ratio")
        for name, ns, modes in GROUPS[group]:
            for n in ns:
                for mode in modes:
                    best, how = optimal.optimal(name, n)
                    envs = db_env if group == "db" else plain_env
                    samples = run_point(name, n, mode, exes, envs, reps, cap, slow, pair)
                    tools = {t: summarize(name, n, mode, cap, samples[t], best) for t in pair}
                    discount_lucky_failures(results["points"], name, n, mode, tools, group)
                    discount_blind_twins(results["points"], group, name, n, tools)
                    point = {
                        "workload": name,
                        "group": group,
                        "n": n,
                        "mode": mode,
                        "optimal": best,
                        "optimal_source": how,
                        "tools": tools,
                        **about(name),
                    }
                    results["points"].append(point)
                    print(
                        f"{name:<30}{n:>3} {mode:<11}{best if best is not None else '?':>8} | "
                        f"{cell(tools[pair[0]]):>30} | {cell(tools[pair[1]]):>30} | {ratio_text(point)}",
                        flush=True,
                    )
    results["meta"]["total_seconds"] = time.perf_counter() - started
    results["per_instruction"] = per_instruction(results["points"]) if "explore" in groups else {}
    for tool, figures in results["per_instruction"].items():
        print(f"traced instruction cost ({tool}): " + ", ".join(f"{k} {v:.0f} ns" for k, v in figures.items() if v))
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {out_json} ({results['meta']['total_seconds']:.0f} s)")


def discount_lucky_failures(
    points: list[dict[str, Any]], name: str, n: int, mode: str, tools: dict[str, Any], group: str | None = None
) -> None:
    """A first failure found by a tool whose exhaustive run of the same point
    did not see the conflicts came from real, uncontrolled concurrency, not
    from exploration; and a conflict-free twin of such a workload explores
    the optimal single execution only because nothing is seen at all. Both
    are reported as failed."""
    twin = TWINS.get(name, name if mode == "first" else None)
    if twin is None:
        return
    for p in points:
        if p["workload"] == twin and p["n"] == n and p["mode"] == "exhaustive" and group in (None, p.get("group")):
            for tool, t in tools.items():
                full = p["tools"].get(tool)
                if full is None:
                    continue
                if t["status"] == "ok" and full["status"] == "failed" and "not seen" in full.get("reason", ""):
                    t["status"] = "failed"
                    t["reason"] = (
                        f"not measurable: the exhaustive run of {twin}({n}) shows that the conflicts are not seen"
                    )


def about(name: str) -> dict[str, Any]:
    """What the report says of a workload besides its figures."""
    out: dict[str, Any] = {"description": DESCRIPTIONS.get(name, "")}
    found = libraries.find(name)
    if found is not None:
        out["library"], out["where"] = found[0].library, found[0].where
    if name.startswith("sleepy_"):
        out["sleep_s"] = workloads.SLEEP_S
    return out


def discount_blind_twins(points: list[dict[str, Any]], group: str, name: str, n: int, tools: dict[str, Any]) -> None:
    """A library race's safe twin holds for a tool that did not find the race
    itself, whatever the tool sees: its pass is no measurement of the
    twin. (The race runs first, in first-failure mode.)"""
    race = TWINS.get(name)
    if race is None or libraries.find(race) is None:
        return
    for p in points:
        if p["group"] == group and p["workload"] == race and p["n"] == n and p["mode"] == "first":
            for tool, t in tools.items():
                if t["status"] == "ok" and p["tools"][tool]["status"] != "ok":
                    t["status"] = "failed"
                    t["reason"] = f"not measurable: the same tool did not find the race of {race} itself"


def cell(t: dict[str, Any]) -> str:
    if t["status"] in ("unsupported",) or "executions" not in t:
        return t["status"]
    mark = "" if t["status"] == "ok" else f" {t['status']}"
    return f"{t['executions']} ex {t['seconds']:.3f} s{mark}"


def ratio_text(point: dict[str, Any]) -> str:
    r = time_ratio(point)
    if r is None:
        return "-"
    value, bound = r
    return f"{'>=' if bound else ''}x{value:.1f}"


def time_ratio(point: dict[str, Any]) -> tuple[float, bool] | None:
    """The second tool's seconds over the first's (the peer's over ours, or
    for the tracing group the narrowed run's over the default's), and
    whether it is a lower bound (the second hit the cap). None when either
    side has no clean result."""
    ours, other = point["tools"].values()
    if ours["status"] != "ok" or other["status"] not in ("ok", "capped"):
        return None
    return other["seconds"] / ours["seconds"], other["status"] == "capped"


def per_instruction(points: list[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """ns per traced instruction: over the whole 50-increment run, and the
    marginal cost from the 500-increment run minus the 50-increment one."""
    by = {(p["workload"], p["n"]): p for p in points if p["mode"] == "exhaustive"}
    out: dict[str, dict[str, float | None]] = {}
    for tool in TOOLS:
        small = by.get(("independent", 8), {}).get("tools", {}).get(tool, {})
        big = by.get(("independent_marginal", 8), {}).get("tools", {}).get(tool, {})
        whole = marginal = None
        if small.get("status") == "ok" and small.get("instructions"):
            whole = small["seconds"] * 1e9 / (small["instructions"] * small["executions"])
        if small.get("status") == "ok" and big.get("status") == "ok" and big["instructions"] > small["instructions"]:
            marginal = (big["seconds"] - small["seconds"]) * 1e9 / (big["instructions"] - small["instructions"])
        out[tool] = {"whole_run_ns": whole, "marginal_ns": marginal}
    return out


if __name__ == "__main__":
    main()
