"""pthread mutexes of a real C extension, taken with the GIL released, are
scheduled: their acquisition orders are explored, an ABBA deadlock is found
at once with its cycle, and a counter kept under a mutex holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from c_extension import build_extension, run_script


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``_native_locks`` compiled from native_locks.c."""
    return build_extension("native_locks", tmp_path_factory.mktemp("native_locks"))


# Under LD_PRELOAD, and without it: the hooks the first exploration installs
# at run time (GOT entries) gate the extension's calls the same way.
HOW = pytest.mark.parametrize("preload", [True, False], ids=["preloaded", "runtime-hooks"])


def run(
    build_dir: Path, mode: str, *, preload: bool = True, gate: bool = True, deadlock_timeout: float = 5.0
) -> dict[str, Any]:
    return run_script("native_locks.py", str(build_dir), mode, str(deadlock_timeout), preload=preload, gate=gate)


@HOW
def test_native_abba_deadlock_is_found_at_once_with_its_cycle(build_dir: Path, preload: bool) -> None:
    r = run(build_dir, "abba", preload=preload)
    assert r["holds"] is False
    assert r["inconclusive"] == []
    assert r["deadlock"] is not None and r["deadlock"].startswith("lock-ordering cycle"), r
    assert len(r["cycle"]) == 2
    # Both mutexes are named, with the extension that took them.
    text = " ".join(r["cycle"])
    assert text.count("_native_locks") >= 2, text
    assert len({w for w in text.split() if w.startswith("mutex:0x")}) == 2, text
    # Found by the scheduler, not by deadlock_timeout (5 s).
    assert r["seconds"] < 1.0, r


@HOW
def test_the_same_order_twin_holds_conclusively(build_dir: Path, preload: bool) -> None:
    r = run(build_dir, "same-order", preload=preload)
    assert r["holds"] is True
    assert r["inconclusive"] == []
    assert r["deadlock"] is None
    # Which worker takes the mutexes first is explored both ways.
    assert r["executions"] == 2


@HOW
def test_a_c_counter_updated_under_a_mutex_holds(build_dir: Path, preload: bool) -> None:
    r = run(build_dir, "counter", preload=preload)
    assert r["holds"] is True
    assert r["inconclusive"] == []
    assert r["executions"] == 2
    # Each worker's lock and unlock, scheduled.
    assert r["native_events"] == 4 * r["executions"]


@HOW
def test_a_native_mutex_held_across_python_steps_makes_the_other_worker_wait(build_dir: Path, preload: bool) -> None:
    # Worker 0 holds the mutex while its Python code runs; worker 1's
    # pthread_mutex_lock is a lock wait the scheduler sees, so the
    # exploration lets worker 0 finish instead of stalling.
    r = run(build_dir, "held-across", preload=preload)
    assert r["holds"] is True
    assert r["inconclusive"] == []
    # Which worker locks first, times whether the other's mark is written
    # before the lock holder reads it.
    assert r["executions"] == 4
    assert r["seconds"] < 2.0, r


def test_mutex_calls_made_holding_the_gil_are_observed_not_scheduled(build_dir: Path) -> None:
    # Parked while holding the GIL, a worker would keep the others from
    # running: the call runs as before, one atomic step whose mutex
    # events are recorded after the fact.
    r = run(build_dir, "abba-holding-gil")
    assert r["holds"] is True
    assert r["deadlock"] is None and r["inconclusive"] == []
    assert r["native_events"] == 8 * r["executions"]


def test_without_the_gate_a_native_mutex_held_across_steps_stalls(build_dir: Path) -> None:
    # FRONTRUN_MUTEX_GATE=0: mutex calls are only observed, so worker 1
    # blocks in the real pthread_mutex_lock while worker 0 waits for its
    # turn, until deadlock_timeout gives the execution up.
    r = run(build_dir, "held-across", gate=False, deadlock_timeout=0.5)
    assert r["holds"] is not True
    assert r["inconclusive"] and "deadlock_timeout" in r["inconclusive"][0][1], r


def test_without_the_gate_the_native_abba_deadlock_is_missed(build_dir: Path) -> None:
    # FRONTRUN_MUTEX_GATE=0: each call is one atomic step, so the
    # exploration never runs one worker between the other's two locks.
    r = run(build_dir, "abba", gate=False)
    assert r["deadlock"] is None
    assert r["holds"] is True
