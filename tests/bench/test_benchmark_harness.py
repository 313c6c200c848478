"""The benchmark harness (scripts/bench.d): its optimal counts are right, its
workloads run under this project's explorer, and it reports points it cannot
measure instead of dropping them. No timings are checked here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from math import factorial
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "scripts" / "bench.d"
sys.path.insert(0, str(BENCH))

import optimal  # noqa: E402
import suite  # noqa: E402

SMALL_MODELS = [
    ("counter(2)", optimal.counter(2)),
    ("counter(3)", optimal.counter(3)),
    ("readers(3)", optimal.readers(3)),
    ("lastzero(2)", optimal.lastzero(2)),
    ("lastzero(3)", optimal.lastzero(3)),
    ("independent(2 threads, 2 rounds)", optimal.independent(2, 2)),
    ("locked_counter(3)", optimal.locked_counter(3)),
    ("abba", optimal.abba()),
    ("same row", optimal.rows(2, True)),
    ("different rows", optimal.rows(2, False)),
]


@pytest.mark.parametrize(("name", "model"), SMALL_MODELS, ids=[m[0] for m in SMALL_MODELS])
def test_sleep_set_count_matches_brute_force_enumeration(name: str, model: optimal.Model) -> None:
    assert optimal.count_traces(model) == optimal.brute_force_traces(model)


def test_optimal_counts_follow_the_known_closed_forms() -> None:
    assert [optimal.optimal("readers", n)[0] for n in range(2, 11)] == [2**n for n in range(2, 11)]
    # (n + 3) * 2^(n - 2), the count the engine's own tests check.
    assert [optimal.optimal("lastzero", n)[0] for n in range(2, 7)] == [(n + 3) * 2 ** (n - 2) for n in range(2, 7)]
    assert [optimal.optimal("locked_counter", k)[0] for k in (2, 3, 4)] == [factorial(k) for k in (2, 3, 4)]
    # Each order of the k writes, times the reads placed before or after each.
    assert [optimal.optimal("counter", k)[0] for k in (2, 3)] == [factorial(k) ** 2 for k in (2, 3)]
    assert optimal.optimal("abba", 2)[0] == 3


def test_abba_model_ends_one_trace_in_the_deadlock() -> None:
    runs = list(optimal._interleavings(optimal.abba()))
    stuck = [r for r in runs if len(r) < 8]
    assert stuck and all(len(r) == 2 for r in stuck)


def run_workload(name: str, n: int, mode: str) -> dict:
    out = subprocess.run(
        [sys.executable, str(BENCH / "workloads.py"), "ours", name, str(n), mode, "60"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(("name", "n"), [("counter", 2), ("readers", 3), ("lastzero", 3), ("independent", 2)])
def test_workloads_explore_the_optimal_count_under_this_project(name: str, n: int) -> None:
    record = run_workload(name, n, "exhaustive")
    best, _ = optimal.optimal(name, n)
    assert record["executions"] == best
    point = suite.summarize(name, n, "exhaustive", 60.0, [record], best)
    assert point["status"] == "ok", point.get("reason")


def test_first_failure_mode_stops_at_the_lost_update() -> None:
    record = run_workload("counter", 2, "first")
    assert record["property_holds"] is False
    assert suite.summarize("counter", 2, "first", 60.0, [record], 4)["status"] == "ok"


def fake(executions: int, holds: bool, seconds: float = 0.5, exhausted: bool | None = True) -> dict:
    return {
        "executions": executions,
        "seconds": seconds,
        "property_holds": holds,
        "exhausted": exhausted,
        "peak_rss_kib": 1,
        "peak_rss_kib_before": 1,
    }


def test_points_that_cannot_be_measured_are_reported_with_a_reason() -> None:
    unsupported = suite.summarize("abba", 2, "exhaustive", 30.0, [{"unsupported": "no locks"}], 3)
    assert (unsupported["status"], unsupported["reason"]) == ("unsupported", "no locks")
    crashed = suite.summarize("readers", 2, "exhaustive", 30.0, [{"error": "ValueError: bad"}], 4)
    assert (crashed["status"], crashed["reason"]) == ("failed", "ValueError: bad")
    blind = suite.summarize("pg_lost_update", 2, "exhaustive", 30.0, [fake(1, False)], 4)
    assert blind["status"] == "failed" and "fewer than the 4 traces" in blind["reason"]
    missed = suite.summarize("counter", 2, "exhaustive", 30.0, [fake(4, True)], 4)
    assert missed["status"] == "failed" and "missed the bug" in missed["reason"]
    false_alarm = suite.summarize("readers", 2, "exhaustive", 30.0, [fake(4, False)], 4)
    assert false_alarm["status"] == "failed" and "false alarm" in false_alarm["reason"]
    stuck = suite.summarize(
        "locked_counter",
        3,
        "exhaustive",
        30.0,
        [{**fake(6, True), "inconclusive": 2, "inconclusive_reason": "stuck"}],
        6,
    )
    assert stuck["status"] == "failed" and "2 inconclusive executions: stuck" in stuck["reason"]
    capped = suite.summarize("lastzero", 6, "exhaustive", 30.0, [fake(900, True, seconds=30.0, exhausted=None)], 144)
    assert capped["status"] == "capped" and capped["executions"] == 900


def test_a_lucky_first_failure_of_a_blind_tool_is_not_counted() -> None:
    exhaustive = {
        "workload": "pg_lost_update",
        "n": 2,
        "mode": "exhaustive",
        "tools": {"ours": suite.summarize("pg_lost_update", 2, "exhaustive", 30.0, [fake(1, False)], 4)},
    }
    first = {"ours": suite.summarize("pg_lost_update", 2, "first", 30.0, [fake(1, False, exhausted=False)], 4)}
    assert first["ours"]["status"] == "ok"
    suite.discount_lucky_failures([exhaustive], "pg_lost_update", 2, "first", first)
    assert first["ours"]["status"] == "failed"
    twin = {"ours": suite.summarize("pg_different_rows", 2, "exhaustive", 30.0, [fake(1, True)], 1)}
    suite.discount_lucky_failures([exhaustive], "pg_different_rows", 2, "exhaustive", twin)
    assert twin["ours"]["status"] == "failed"


SERIAL = [("counter", 3), ("readers", 3), ("lastzero", 4), ("independent", 2), ("locked_counter", 3)]


@pytest.mark.parametrize(("name", "n"), SERIAL)
def test_invariants_hold_when_the_threads_run_one_after_another(name: str, n: int) -> None:
    import workloads

    setup, threads, invariant = workloads.workload(name, n)
    state = setup()
    for thread in threads:
        thread(state)
    assert invariant(state)


def run_under_library(args: list[str], dsn: str) -> dict:
    lib = subprocess.run(
        [sys.executable, "-m", "frontrun", "--preload-path"], capture_output=True, text=True, check=True
    ).stdout.strip()
    env = {**os.environ, "LD_PRELOAD": lib, "FRONTRUN_BENCH_PG_DSN": f"{dsn} sslmode=disable"}
    out = subprocess.run(
        [sys.executable, str(BENCH / "workloads.py"), *args], capture_output=True, text=True, timeout=120, env=env
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_postgresql_workloads_hold_serially_and_race_under_exploration(postgresql_dsn: str) -> None:
    import workloads

    workloads.PG_DSN = f"{postgresql_dsn} sslmode=disable"
    for name, n in (("pg_lost_update", 2), ("pg_different_rows", 2)):
        workloads.create_table(n)
        try:
            setup, threads, invariant = workloads.workload(name, n)
            state = setup()
            for thread in threads:
                thread(state)
            assert invariant(state), name
        finally:
            workloads.drop_table()
    lost = run_under_library(["ours", "pg_lost_update", "2", "exhaustive", "60"], postgresql_dsn)
    assert (lost["executions"], lost["failures"]) == (optimal.optimal("pg_lost_update", 2)[0], 2), lost
    apart = run_under_library(["ours", "pg_different_rows", "2", "exhaustive", "60"], postgresql_dsn)
    assert (apart["executions"], apart["failures"]) == (1, 0), apart


def test_the_memory_benchmark_records_the_peak_rss_of_each_lastzero(tmp_path: Path) -> None:
    out = tmp_path / "memory.json"
    proc = subprocess.run(
        [sys.executable, str(BENCH / "memory.py"), str(out), "3"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    points = json.loads(out.read_text())["points"]
    assert [p["n"] for p in points] == [2, 3]
    for p in points:
        assert p["executions"] == p["traces"] == (p["n"] + 3) * 2 ** (p["n"] - 2)
        assert p["peak_rss_kib"] >= p["peak_rss_kib_before"] > 0
