"""Virtual time for the explored threads: ``time.sleep`` costs no wall time
and hands the turn over, the workers' clocks advance by their sleeps, and
``virtual_time=False`` keeps the machine's clock."""

from __future__ import annotations

import time

import frontrun
import pytest


class Box:
    def __init__(self) -> None:
        self.value = 0
        self.flag = False
        self.readings: list[float] = []
        self.polls: list[int] = []


def sleep_long(b: Box) -> None:
    # Far longer than timeout_per_run: on real time the execution would be
    # given up.
    time.sleep(30)
    b.value += 1


def test_a_sleep_longer_than_the_timeout_costs_no_wall_time() -> None:
    result = frontrun.explore_dpor(Box, [sleep_long, sleep_long], lambda b: b.value == 2, timeout_per_run=2.0)
    assert result.inconclusive == []
    # The lost update between the read and the write is still found.
    assert result.verdict == "race"


def clocked(b: Box) -> None:
    t0 = time.monotonic()
    w0 = time.time()
    p0 = time.perf_counter()
    n0 = time.monotonic_ns()
    time.sleep(5)
    b.readings.extend(
        [time.monotonic() - t0, time.time() - w0, time.perf_counter() - p0, (time.monotonic_ns() - n0) / 1e9]
    )


def test_a_workers_clock_advances_by_its_sleep() -> None:
    result = frontrun.explore_dpor(Box, [clocked], lambda b: all(5 <= r < 5.01 for r in b.readings))
    assert result.verdict == "holds", result.explanation


def test_setup_and_the_invariant_keep_the_real_clock() -> None:
    real: list[float] = []

    def setup() -> Box:
        real.append(time.time())
        return Box()

    def invariant(b: Box) -> bool:
        real.append(time.time())
        return True

    frontrun.explore_dpor(setup, [clocked], invariant)
    # Both read the wall clock: no 5-second jump between them.
    assert 0 <= real[1] - real[0] < 5


def poll_three_times(b: Box) -> None:
    for n in range(3):
        if b.flag:
            b.polls.append(n)
            return
        time.sleep(0.1)
    b.polls.append(3)


def set_flag(b: Box) -> None:
    b.flag = True


@pytest.mark.parametrize("bound", [None, 0])
def test_a_sleep_hands_the_turn_over_without_a_preemption(bound: int | None) -> None:
    # The setter can come before the first poll, between polls, or after
    # the last: four traces. Every switch to the setter happens at a sleep
    # (or before the poller starts), so even preemption_bound=0 reaches all
    # four.
    seen: set[int] = set()

    def invariant(b: Box) -> bool:
        seen.update(b.polls)
        return True

    result = frontrun.explore_dpor(
        Box, [poll_three_times, set_flag], invariant, preemption_bound=bound, stop_on_first=False
    )
    assert result.verdict == "holds"
    assert seen == {0, 1, 2, 3}


def test_virtual_time_false_keeps_the_machines_clock() -> None:
    def nap(b: Box) -> None:
        t0 = time.monotonic()
        time.sleep(0.05)
        b.readings.append(time.monotonic() - t0)

    result = frontrun.explore_dpor(Box, [nap], lambda b: b.readings[0] >= 0.05, virtual_time=False)
    assert result.verdict == "holds"


def test_a_bad_sleep_argument_fails_as_time_sleep_does() -> None:
    errors: list[BaseException] = []

    def bad(b: Box) -> None:
        for arg in (-1, "1", float("nan")):
            try:
                time.sleep(arg)  # type: ignore[arg-type]
            except (TypeError, ValueError) as exc:
                errors.append(exc)

    frontrun.explore_dpor(Box, [bad], lambda b: True)
    assert [type(e) for e in errors] == [ValueError, TypeError, ValueError]


def test_virtual_time_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match="virtual_time"):
        frontrun.explore_dpor(Box, [set_flag], lambda b: True, virtual_time="yes")  # type: ignore[arg-type]


def bump(b: Box) -> None:
    b.value += 1


def test_the_replay_line_names_virtual_time_when_it_is_off() -> None:
    off = frontrun.explore_dpor(Box, [bump, bump], lambda b: b.value == 2, virtual_time=False)
    assert off.verdict == "race"
    assert "virtual_time=False)" in (off.explanation or "")
    on = frontrun.explore_dpor(Box, [bump, bump], lambda b: b.value == 2)
    assert "virtual_time=" not in (on.explanation or "")
    replayed = frontrun.replay(off.counterexample, Box, [bump, bump], lambda b: b.value == 2, virtual_time=False)
    assert replayed.invariant_holds is False


def test_the_time_functions_are_put_back_after_the_exploration() -> None:
    before = (time.sleep, time.monotonic, time.time, time.perf_counter)
    frontrun.explore_dpor(Box, [set_flag], lambda b: True)
    assert (time.sleep, time.monotonic, time.time, time.perf_counter) == before
