"""Side-by-side benchmark driver: this repository's frontrun against PyPI
frontrun 0.7.0, with the optimal execution count beside them.

    python suite.py OUR_PYTHON PEER_PYTHON OUT_JSON GROUP [GROUP...]

GROUP is "explore" (shared-memory workloads) or "db" (PostgreSQL under
LD_PRELOAD). Every sample runs in a fresh process (`workloads.py`); the two
tools alternate within each repetition, and the medians are compared.

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
import optimal  # noqa: E402

TOOLS = ("ours", "peer")

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
EXPECT_FAILURE = {"counter": True, "abba": True, "pg_lost_update": True, "pg_tls_lost_update": True}
# A conflict-free workload and the racy one that shows whether the tool
# sees the accesses at all.
TWINS = {
    "pg_different_rows": "pg_lost_update",
    "pg_tls_different_rows": "pg_tls_lost_update",
    "pg_repeatable_read_rows": "pg_lost_update",
    "pg_connect_in_worker_rows": "pg_lost_update",
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
        mode == "exhaustive" and any(s.get("exhausted") is False for s in samples)
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
    if mode == "exhaustive":
        if best is not None and execs < best:
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
) -> dict[str, dict[str, Any]]:
    samples: dict[str, list[dict[str, Any]]] = {t: [] for t in TOOLS}
    done: set[str] = set()
    for rep in range(reps):
        order = TOOLS if rep % 2 == 0 else TOOLS[::-1]
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
    exes = {"ours": ours_py, "peer": peer_py}
    base = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    plain_env = {t: base for t in TOOLS}
    db_env = {t: preload_env(t, exes[t], base) for t in TOOLS}
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
    print(f"{'workload':<22}{'N':>3} {'mode':<11}{'optimal':>8} | {'ours':>30} | {'peer':>30} | time ratio")
    for group in groups:
        for name, ns, modes in GROUPS[group]:
            for n in ns:
                for mode in modes:
                    best, how = optimal.optimal(name, n)
                    envs = db_env if group == "db" else plain_env
                    samples = run_point(name, n, mode, exes, envs, reps, cap, slow)
                    tools = {t: summarize(name, n, mode, cap, samples[t], best) for t in TOOLS}
                    discount_lucky_failures(results["points"], name, n, mode, tools)
                    point = {
                        "workload": name,
                        "group": group,
                        "n": n,
                        "mode": mode,
                        "optimal": best,
                        "optimal_source": how,
                        "tools": tools,
                    }
                    results["points"].append(point)
                    print(
                        f"{name:<22}{n:>3} {mode:<11}{best if best is not None else '?':>8} | "
                        f"{cell(tools['ours']):>30} | {cell(tools['peer']):>30} | {ratio_text(point)}",
                        flush=True,
                    )
    results["meta"]["total_seconds"] = time.perf_counter() - started
    results["per_instruction"] = per_instruction(results["points"])
    for tool, figures in results["per_instruction"].items():
        print(f"traced instruction cost ({tool}): " + ", ".join(f"{k} {v:.0f} ns" for k, v in figures.items() if v))
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {out_json} ({results['meta']['total_seconds']:.0f} s)")


def discount_lucky_failures(points: list[dict[str, Any]], name: str, n: int, mode: str, tools: dict[str, Any]) -> None:
    """A first failure found by a tool whose exhaustive run of the same point
    did not see the conflicts came from real, uncontrolled concurrency, not
    from exploration; and a conflict-free twin of such a workload explores
    the optimal single execution only because nothing is seen at all. Both
    are reported as failed."""
    twin = TWINS.get(name, name if mode == "first" else None)
    if twin is None:
        return
    for p in points:
        if p["workload"] == twin and p["n"] == n and p["mode"] == "exhaustive":
            for tool, t in tools.items():
                full = p["tools"][tool]
                if t["status"] == "ok" and full["status"] == "failed" and "not seen" in full.get("reason", ""):
                    t["status"] = "failed"
                    t["reason"] = (
                        f"not measurable: the exhaustive run of {twin}({n}) shows that the conflicts are not seen"
                    )


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
    """peer seconds / our seconds, and whether it is a lower bound (the peer
    hit the cap). None when either side has no clean result."""
    ours, peer = point["tools"]["ours"], point["tools"]["peer"]
    if ours["status"] != "ok" or peer["status"] not in ("ok", "capped"):
        return None
    return peer["seconds"] / ours["seconds"], peer["status"] == "capped"


def per_instruction(points: list[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """ns per traced instruction: over the whole 50-increment run, and the
    marginal cost from the 500-increment run minus the 50-increment one."""
    by = {(p["workload"], p["n"]): p for p in points}
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
