"""explore_dpor's contract: argument checking, errors, warnings, timeouts,
explanations and replay."""

from __future__ import annotations

import re
import select
import subprocess
import sys
import textwrap
import time
import warnings

import frontrun
import pytest
from _helpers import explore
from frontrun import explore_dpor, replay


class Counter:
    def __init__(self) -> None:
        self.value = 0

    def increment(self) -> None:
        tmp = self.value
        self.value = tmp + 1


def incr(c: Counter) -> None:
    c.increment()


def two() -> list:
    return [incr, incr]


# -- arguments ------------------------------------------------------------------
# The bad-argument table of every entry point is tests/reliability/_bad_arguments.py.


# -- exceptions -------------------------------------------------------------------


def test_exception_in_a_worker_is_a_failure_with_its_traceback() -> None:
    def boom(c: Counter) -> None:
        c.value = 1
        raise KeyError("missing-thing")

    result = explore(Counter, [incr, boom], lambda c: True)
    assert not result.property_holds
    assert isinstance(result.errors[1], KeyError)
    assert result.explanation is not None
    assert "Thread 1 raised KeyError" in result.explanation
    assert "missing-thing" in result.explanation
    assert "in boom" in result.explanation  # the traceback


def test_exception_in_setup_propagates() -> None:
    def bad_setup() -> Counter:
        raise RuntimeError("setup broke")

    with pytest.raises(RuntimeError, match="setup broke"):
        explore(bad_setup, two(), lambda c: True)


def test_exception_in_invariant_propagates() -> None:
    def bad_invariant(c: Counter) -> bool:
        raise ZeroDivisionError("invariant broke")

    with pytest.raises(ZeroDivisionError, match="invariant broke"):
        explore(Counter, two(), bad_invariant)


def test_nothing_is_left_traced_after_an_exception() -> None:
    with pytest.raises(ZeroDivisionError):
        explore(Counter, two(), lambda c: 1 / 0)
    # A later exploration starts from a clean slate.
    assert explore(Counter, two(), lambda c: c.value == 2).num_explored == 2


# -- I/O detection warning ----------------------------------------------------------


def test_detect_io_without_the_preload_library_warns_how_to_enable_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import frontrun.dpor as dpor
    from frontrun import FrontrunWarning, _stats

    monkeypatch.setattr(dpor, "_preload_warned", False)
    # (The suite may itself run under the library.)
    monkeypatch.setattr(dpor, "_preload_loaded", lambda: False)
    from frontrun import _runtime_hooks

    monkeypatch.setattr(_runtime_hooks, "_state", "refused: as on a platform without run-time hooks")
    # As outside pytest: the plugin turns the warning into a summary line.
    monkeypatch.setattr(_stats.DEFAULTS, "notices_to_session", False)
    with pytest.warns(FrontrunWarning, match="LD_PRELOAD"):
        explore_dpor(Counter, two(), lambda c: True, detect_io=True, reproduce_on_failure=0)
    # once only
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        explore_dpor(Counter, two(), lambda c: True, detect_io=True, reproduce_on_failure=0)


# -- stuck threads ------------------------------------------------------------------


def test_a_thread_stuck_outside_traced_code_makes_the_execution_inconclusive() -> None:
    def sleeper(c: Counter) -> None:
        c.value = 1
        # Blocked in C for real (a worker's time.sleep runs on the virtual clock).
        select.select([], [], [], 1.0)
        c.value = 2

    start = time.monotonic()
    result = explore(Counter, [sleeper, incr], lambda c: True, deadlock_timeout=0.3, max_executions=1)
    assert time.monotonic() - start < 5
    assert result.inconclusive, result
    number, why = result.inconclusive[0]
    assert number == 1
    assert "thread 0" in why
    assert "sleeper" in why  # where it was last seen
    # The abandoned thread, still asleep, does not disturb the next exploration.
    assert explore(Counter, two(), lambda c: c.value == 2).num_explored == 2


# -- explanation and replay ------------------------------------------------------------


def test_explanation_shows_the_conflicting_steps_and_classifies_them() -> None:
    result = explore(Counter, two(), lambda c: c.value == 2, reproduce_on_failure=5)
    text = result.explanation
    assert text is not None
    assert "[read Counter.value]" in text
    assert "[write Counter.value]" in text
    assert "tmp = self.value" in text
    assert "self.value = tmp + 1" in text
    assert "lost update on Counter.value" in text
    assert re.search(r"test_api_contract\.py:\d+", text)
    assert text.rstrip().endswith("Reproduced 5/5 times.")
    assert (result.reproduction_attempts, result.reproduction_successes) == (5, 5)
    # Steps that touch nothing shared (the method lookup) are left out.
    assert "Counter.increment" not in text


def test_assert_holds_raises_with_the_explanation() -> None:
    result = explore(Counter, two(), lambda c: c.value == 2)
    with pytest.raises(AssertionError, match="lost update"):
        result.assert_holds()
    with pytest.raises(AssertionError, match=r"^counter: "):
        result.assert_holds("counter: ")
    explore(Counter, [incr], lambda c: c.value == 1).assert_holds()


def test_counterexample_replays_deterministically() -> None:
    result = explore(Counter, two(), lambda c: c.value == 2)
    assert result.counterexample is not None
    for _ in range(5):
        rep = replay(result.counterexample, Counter, two(), lambda c: c.value == 2)
        assert rep.invariant_holds is False
        assert rep.state.value == 1
        assert rep.schedule == result.counterexample


def test_a_passing_schedule_replays_as_passing() -> None:
    serial = replay([0, 0, 0, 1, 1, 1], Counter, two(), lambda c: c.value == 2)
    assert serial.invariant_holds is True
    assert serial.state.value == 2


def test_a_replay_cut_short_continues_with_the_thread_that_ran_last() -> None:
    # Past the end of the schedule the explorer makes its default choice
    # (docs/internals.md): thread 1 keeps running while it can, then thread 0.
    rep = replay([0, 1], Counter, two(), lambda c: c.value == 2)
    assert rep.schedule == [0, 1, 1, 1, 0, 0]


def test_replay_rejects_schedules_naming_unknown_threads() -> None:
    with pytest.raises(ValueError, match=r"schedule\[1\]"):
        replay([0, 7], Counter, two())


def test_stop_on_first_false_collects_every_failure() -> None:
    result = explore(Counter, two(), lambda c: c.value == 2, stop_on_first=False, preemption_bound=None)
    assert [n for n, _ in result.failures] and len(result.failures) == 2
    assert result.exhausted
    assert result.counterexample == result.failures[0][1]


def test_events_lost_is_zero_without_the_ring() -> None:
    assert explore(Counter, two(), lambda c: True).events_lost == 0


# -- outside pytest ------------------------------------------------------------------


def test_works_from_a_plain_script(tmp_path) -> None:
    script = tmp_path / "counter_script.py"
    script.write_text(
        textwrap.dedent(
            """
            import frontrun

            class Counter:
                def __init__(self):
                    self.value = 0

            def incr(c):
                tmp = c.value
                c.value = tmp + 1

            r = frontrun.explore_dpor(Counter, [incr, incr], lambda c: c.value == 2, detect_io=False)
            print(r.property_holds, r.num_explored, r.reproduction_successes)
            """
        )
    )
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "2", "10"]


def test_backend_matches_the_interpreter() -> None:
    expected = "sys.monitoring" if sys.version_info >= (3, 12) else "settrace"
    assert frontrun._engine.BACKEND == expected


def test_an_execution_longer_than_max_branches_is_cut_and_the_search_not_exhausted() -> None:
    def busy(c: Counter) -> None:
        for _ in range(100):
            c.value = c.value + 1

    result = explore(Counter, [busy, incr], lambda c: True, max_branches=20, max_executions=1)
    # The caller's budget: said out loud, not a reason to fail assert_holds.
    assert result.truncated
    assert "max_branches" in result.truncated[0][1]
    assert result.verdict == "holds" and not result.exhausted
    assert "stopped by max_branches=20" in result.scope
    result.assert_holds()


def test_an_execution_longer_than_timeout_per_run_is_abandoned() -> None:
    def endless(c: Counter) -> None:
        while True:
            c.value = c.value + 1

    start = time.monotonic()
    result = explore(
        Counter, [endless, incr], lambda c: True, timeout_per_run=0.3, max_branches=10**9, max_executions=1
    )
    assert time.monotonic() - start < 5
    assert result.inconclusive
    assert "timeout_per_run" in result.inconclusive[0][1]
    assert "endless" in result.inconclusive[0][1]


def test_explorations_running_at_the_same_time_do_not_interfere() -> None:
    import threading

    results: list[tuple[int, int]] = []

    def go() -> None:
        r = explore(Counter, two(), lambda c: c.value == 2, preemption_bound=None, stop_on_first=False)
        results.append((r.num_explored, len(r.failures)))

    runners = [threading.Thread(target=go) for _ in range(3)]
    for t in runners:
        t.start()
    for t in runners:
        t.join(60)
    assert results == [(4, 2)] * 3


def test_runs_under_a_profiler() -> None:
    import cProfile

    profiler = cProfile.Profile()
    profiler.enable()
    try:
        result = explore(Counter, two(), lambda c: c.value == 2)
    finally:
        profiler.disable()
    assert result.num_explored == 2


def test_total_timeout_stops_a_long_exploration_early() -> None:
    class Shared:
        def __init__(self) -> None:
            self.x = 0

    def writer(s: Shared) -> None:
        s.x = 1

    def reader(s: Shared) -> None:
        _ = s.x

    start = time.monotonic()
    result = explore(
        Shared, [writer] + [reader] * 12, lambda s: True, preemption_bound=None, stop_on_first=False, total_timeout=0.3
    )
    assert time.monotonic() - start < 3
    assert 0 < result.num_explored < 2**12
    assert not result.exhausted
    assert result.property_holds


def test_the_printed_schedule_replays() -> None:
    result = explore(Counter, two(), lambda c: c.value == 2)
    assert result.explanation is not None and result.counterexample is not None
    printed = next(ln for ln in result.explanation.splitlines() if ln.startswith("Replay with:"))
    text = printed.split('"')[1]
    assert frontrun._token.decode(text) == (2, result.counterexample)
    assert replay(text, Counter, two(), lambda c: c.value == 2).invariant_holds is False
    with pytest.raises(ValueError):
        replay("v9:nonsense", Counter, two())


def test_ctrl_c_interrupts_a_waiting_exploration() -> None:
    import _thread
    import threading

    def sleeper(c: Counter) -> None:
        c.value = 1
        # Blocked in C for real (a worker's time.sleep runs on the virtual clock).
        select.select([], [], [], 1.5)
        c.value = 2

    timer = threading.Timer(0.3, _thread.interrupt_main)
    start = time.monotonic()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        explore(Counter, [sleeper, incr], lambda c: True, deadlock_timeout=30, timeout_per_run=30)
    assert time.monotonic() - start < 5
    timer.join()
