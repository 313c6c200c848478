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


# -- the library workloads, the default-bound and sleep modes, the report -----

import libraries  # noqa: E402

REQUIREMENTS = Path(__file__).resolve().parents[2] / "scripts" / "requirements-dev.txt"


def test_the_library_pins_come_from_the_requirements_file_and_cover_every_library(tmp_path: Path) -> None:
    pins = libraries.pins(str(REQUIREMENTS))
    assert len(pins) == len(libraries.LIBRARIES) >= 8
    assert all("==" in p for p in pins)
    loose = tmp_path / "requirements.txt"
    loose.write_text("\n".join(p.split("==")[0] + ">=1" if p.startswith("cachetools") else p for p in pins) + "\n")
    with pytest.raises(SystemExit, match="cachetools"):
        libraries.pins(str(loose))


def test_there_are_enough_library_races() -> None:
    assert len(libraries.RACES) >= 8
    assert len({r.library for r in libraries.RACES.values()}) >= 8


@pytest.mark.parametrize("name", sorted(libraries.RACES))
def test_each_library_race_holds_serially_and_so_does_its_twin(name: str) -> None:
    import workloads

    for workload in (name, f"{name}_safe"):
        setup, threads, invariant = workloads.workload(workload, 2)
        state = setup()
        for thread in threads:
            thread(state)
        assert invariant(state), workload


@pytest.mark.parametrize("name", ["cachetools_setitem", "boltons_threshold_counter"])
def test_library_races_are_found_by_default_and_missed_with_the_library_skipped(name: str) -> None:
    found = run_workload(name, 2, "first")
    assert found["property_holds"] is False
    twin = run_workload(f"{name}_safe", 2, "exhaustive")
    assert twin["property_holds"] is True and twin["exhausted"] is True
    out = subprocess.run(
        [sys.executable, str(BENCH / "workloads.py"), "ours_narrow", name, "2", "first", "60"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    skipped = json.loads(out.stdout.strip().splitlines()[-1])
    assert (skipped["property_holds"], skipped["executions"]) == (True, 1)


def test_the_peer_is_told_to_trace_the_library_and_the_narrow_run_to_skip_it() -> None:
    import workloads

    peer = workloads.options("peer", "urllib3_new_conn", "first", 60.0)
    assert peer["trace_packages"] == ["urllib3", "urllib3.*"]
    assert "preemption_bound" not in peer and "reproduce_on_failure" not in peer  # the defaults
    narrow = workloads.options("ours_narrow", "urllib3_new_conn_safe", "exhaustive", 60.0)
    assert narrow["skip_packages"] == ["urllib3", "urllib3.*"] and narrow["preemption_bound"] is None
    assert workloads.options("ours", "readers", "bounded", 60.0)["preemption_bound"] == 2
    assert workloads.options("ours", "readers", "exhaustive", 60.0)["preemption_bound"] is None


def test_a_bounded_search_may_explore_fewer_executions_than_traces() -> None:
    point = suite.summarize("readers", 3, "bounded", 60.0, [fake(5, True)], 8)
    assert point["status"] == "ok"
    missed = suite.summarize("counter", 2, "bounded", 60.0, [fake(3, True)], 4)
    assert missed["status"] == "failed" and "missed the bug" in missed["reason"]


def test_a_safe_twin_counts_only_for_a_tool_that_found_the_race() -> None:
    race = {
        "group": "libraries",
        "workload": "cachetools_setitem",
        "n": 2,
        "mode": "first",
        "tools": {
            "ours": suite.summarize("cachetools_setitem", 2, "first", 60.0, [fake(2, False, exhausted=False)], None),
            "peer": suite.summarize("cachetools_setitem", 2, "first", 60.0, [fake(1, True)], None),
        },
    }
    assert (race["tools"]["ours"]["status"], race["tools"]["peer"]["status"]) == ("ok", "failed")
    twin = {
        t: suite.summarize("cachetools_setitem_safe", 2, "exhaustive", 60.0, [fake(2, True)], None)
        for t in race["tools"]
    }
    suite.discount_blind_twins([race], "libraries", "cachetools_setitem_safe", 2, twin)
    assert twin["ours"]["status"] == "ok"
    assert twin["peer"]["status"] == "failed" and "did not find the race" in twin["peer"]["reason"]


def test_the_sleep_workloads_hold_serially_and_the_racy_one_races() -> None:
    import workloads

    for name in ("sleepy_counter", "sleepy_locked_counter"):
        setup, threads, invariant = workloads.workload(name, 2)
        state = setup()
        for thread in threads:
            thread(state)
        assert invariant(state), name
    record = run_workload("sleepy_counter", 2, "exhaustive")
    assert (record["executions"], record["failures"]) == (optimal.optimal("sleepy_counter", 2)[0], 2)


def test_the_scale_series_stops_at_the_first_point_over_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    import scale

    def sample(exe: str, tool: str, name: str, n: int, mode: str, cap: float, env: dict) -> dict:
        seconds = 0.01 * 4**n
        return {**fake(2**n, True, seconds=min(seconds, cap)), "exhausted": seconds < cap}

    monkeypatch.setattr(scale.suite, "sample", sample)
    points = scale.series("python", "ours", "readers", 1.0, 24, {})
    assert [(p["n"], p["status"]) for p in points] == [(2, "ok"), (3, "ok"), (4, "capped")]
    assert points[0]["executions_per_s"] == 4 / 0.16


def test_the_report_lists_every_point_below_one_with_its_reason() -> None:
    import report

    def point(group: str, name: str, mode: str, ours: dict, peer: dict) -> dict:
        return {
            "group": group,
            "workload": name,
            "n": 2,
            "mode": mode,
            "optimal": 4,
            "tools": {"ours": {"status": "ok", **ours}, "peer": {"status": "ok", **peer}},
        }

    points = [
        point("explore", "readers", "bounded", {"executions": 40, "seconds": 0.4}, {"executions": 4, "seconds": 0.1}),
        point(
            "explore", "readers", "exhaustive", {"executions": 4, "seconds": 0.01}, {"executions": 4, "seconds": 0.1}
        ),
        point(
            "sleep",
            "sleepy_counter",
            "exhaustive",
            {"executions": 4, "seconds": 0.1},
            {"executions": 6, "seconds": 0.05},
        ),
    ]
    points[2]["sleep_s"] = 0.01
    text = "\n".join(report.behind_section(points, None))
    assert "readers(2, exhaustive, preemption bound 2): x0.25: it explores 40 executions to 0.7.0's 4" in text
    assert "readers(2, exhaustive)" not in text
    # A slow sleep point is listed with the figures' reason; this project's
    # workers sleep on a virtual clock, so sleeping is no reason of its own.
    assert "sleepy_counter(2, exhaustive): x0.50: 25.0 ms per run against 0.7.0's 8.3 ms" in text
    assert "this project sleeps" not in text


def test_the_tracing_cost_is_taken_over_points_that_explore_the_same_executions() -> None:
    import report

    def point(name: str, mode: str, default: dict, narrow: dict) -> dict:
        tools = {"ours": {"status": "ok", **default}, "ours_narrow": {"status": "ok", **narrow}}
        return {"group": "tracing", "workload": name, "n": 2, "mode": mode, "tools": tools}

    points = [
        point("private_caches", "exhaustive", {"executions": 4, "seconds": 0.3}, {"executions": 4, "seconds": 0.1}),
        point(
            "cachetools_setitem",
            "first",
            {"executions": 2, "seconds": 0.5, "failure_found": True},
            {"executions": 1, "seconds": 0.1, "failure_found": False},
        ),
    ]
    text = "\n".join(report.tracing_section(points))
    assert "over the 1 points that explore the same executions both ways: x3.00" in text
    assert "missed with it skipped: 1 of 1 (cachetools_setitem)" in text
    assert "| cachetools_setitem | 2 | first | 2 / 1 | 500.0 ms / 100.0 ms | x5.00 | yes / no |" in text


def test_the_overhead_section_says_which_figures_are_over_their_bound() -> None:
    import report

    overhead = {
        "import": {"import_ms": 41.0, "import_cpu_ms": 15.0, "from_source_ms": 60.0, "from_source_cpu_ms": 35.0},
        "first": {"first_extra_ms": 9.5, "first_extra_cpu_ms": 8.0},
        "replay": {"counter": {"replay_ms": 0.04, "execution_ms": 0.05, "ratio": 0.8}},
        "state": [{"readers": 8, "locks": 512, "kind": "real", "per_execution_ms": 1.3, "per_execution_cpu_ms": 1.1}],
    }
    text = "\n".join(report.overhead_section(overhead))
    [import_row] = [ln for ln in text.splitlines() if "`import frontrun`" in ln]
    assert "41.0 ms" in import_row and "**over**" in import_row
    [first_row] = [ln for ln in text.splitlines() if "first `explore_dpor`" in ln]
    assert "within" in first_row
    assert "x0.80" in text and "512 unused real locks" in text
    assert report.overhead_section(None) == []
