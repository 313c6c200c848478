"""Deadlocks among cooperative primitives are reported at once: a
lock-ordering cycle with the cycle, every thread waiting with what each
waits on. Nothing here relies on deadlock_timeout (it is set high)."""

from __future__ import annotations

import threading
import time

import frontrun
import pytest
from _sync_helpers import assert_holds, explore_all


class TwoLocks:
    def __init__(self) -> None:
        self.a = threading.Lock()
        self.b = threading.Lock()
        self.done = 0


def a_then_b(s: TwoLocks) -> None:
    with s.a:
        with s.b:
            s.done += 1


def b_then_a(s: TwoLocks) -> None:
    with s.b:
        with s.a:
            s.done += 1


def test_abba_deadlock_is_found_with_its_cycle() -> None:
    start = time.monotonic()
    result = explore_all(TwoLocks, [a_then_b, b_then_a], lambda s: s.done == 2, deadlock_timeout=60.0)
    assert time.monotonic() - start < 30, "the deadlock must not wait for deadlock_timeout"
    assert not result.property_holds
    assert result.inconclusive == []
    assert result.deadlock == [0, 1]
    assert result.deadlock.is_cycle
    edges = {e.thread: e for e in result.deadlock.cycle}
    assert edges[0].holds == ("Lock state.a",) and edges[0].target == "Lock state.b"
    assert edges[1].holds == ("Lock state.b",) and edges[1].target == "Lock state.a"
    assert "thread 0 holds Lock state.a and waits for Lock state.b" in result.explanation
    assert "thread 1 holds Lock state.b and waits for Lock state.a" in result.explanation
    assert "(deadlock)" in result.explanation
    # The other orders finish: one of the three executions deadlocks.
    assert result.num_explored == 3
    assert len(result.failures) == 1
    assert result.reproduction_successes == result.reproduction_attempts > 0


def test_consistent_lock_order_never_deadlocks() -> None:
    result = explore_all(TwoLocks, [a_then_b, a_then_b], lambda s: s.done == 2)
    assert_holds(result)
    assert result.deadlock is None


def test_replaying_the_deadlock_reports_it_again() -> None:
    result = explore_all(TwoLocks, [a_then_b, b_then_a], lambda s: s.done == 2, reproduce_on_failure=0)
    assert result.counterexample is not None
    replayed = frontrun.replay(result.counterexample, TwoLocks, [a_then_b, b_then_a], lambda s: s.done == 2)
    assert replayed.failed
    assert replayed.deadlock == [0, 1]
    assert "thread 0 holds Lock state.a and waits for Lock state.b" in replayed.explanation


def test_acquiring_a_plain_lock_twice_deadlocks_the_thread() -> None:
    class State:
        def __init__(self) -> None:
            self.lock = threading.Lock()

    def twice(s: State) -> None:
        with s.lock:
            with s.lock:
                pass

    result = explore_all(State, [twice], deadlock_timeout=60.0)
    assert result.deadlock == [0]
    assert "thread 0 holds Lock state.lock and waits for Lock state.lock" in result.explanation


def test_waiting_on_an_event_nobody_sets_is_a_deadlock() -> None:
    class State:
        def __init__(self) -> None:
            self.go = threading.Event()
            self.lock = threading.Lock()

    def waiter(s: State) -> None:
        s.go.wait()

    def bystander(s: State) -> None:
        with s.lock:
            pass

    result = explore_all(State, [waiter, bystander], deadlock_timeout=60.0)
    assert not result.property_holds
    assert result.deadlock == [0]
    assert not result.deadlock.is_cycle
    assert "every unfinished thread is blocked: thread 0 waits on Event state.go" in result.explanation


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_dining_philosophers_explore_every_trace_once(n: int) -> None:
    class Table:
        def __init__(self) -> None:
            self.forks = [threading.Lock() for _ in range(n)]
            self.meals = 0

    def philosopher(i: int):
        def dine(t: Table) -> None:
            with t.forks[i]:
                with t.forks[(i + 1) % n]:
                    pass

        return dine

    result = explore_all(Table, [philosopher(i) for i in range(n)], reproduce_on_failure=0, deadlock_timeout=60.0)
    assert result.inconclusive == []
    assert result.exhausted
    # Each philosopher either gets both forks before its right neighbour
    # takes its right fork or not: 2^n traces, minus the orders that are
    # impossible, leaves 2^n - 1, one of which (everyone holds the left
    # fork) deadlocks.
    assert result.num_explored == 2**n - 1
    assert len(result.failures) == 1
    assert sorted(result.deadlock) == list(range(n))
    assert len(result.deadlock.cycle) == n
    for edge in result.deadlock.cycle:
        assert edge.holds == (f"Lock state.forks[{edge.thread}]",)
        assert edge.target == f"Lock state.forks[{(edge.thread + 1) % n}]"


def test_lock_cycle_ends_the_execution_while_other_threads_could_still_run() -> None:
    class State(TwoLocks):
        def __init__(self) -> None:
            super().__init__()
            self.ticks = 0

    def busy(s: State) -> None:
        for _ in range(50):
            s.ticks += 1

    found = explore_all(State, [a_then_b, b_then_a], reproduce_on_failure=0)
    assert found.counterexample is not None
    # The same interleaving of threads 0 and 1, with a third thread that
    # has not run yet when the cycle closes.
    replayed = frontrun.replay(found.counterexample, State, [a_then_b, b_then_a, busy])
    assert replayed.deadlock == [0, 1]
    assert replayed.aborted is None
    assert replayed.schedule == found.counterexample
    assert 2 not in replayed.schedule
    assert replayed.state.ticks == 0


def test_a_lock_never_released_by_a_finished_thread_is_named() -> None:
    class State:
        def __init__(self) -> None:
            self.lock = threading.Lock()

    def forgets(s: State) -> None:
        s.lock.acquire()

    def waits(s: State) -> None:
        with s.lock:
            pass

    result = explore_all(State, [forgets, waits], deadlock_timeout=60.0)
    assert result.deadlock == [1]
    assert "thread 1 waits for Lock state.lock, which thread 0 still held when it finished" in result.explanation


def test_threads_unwinding_from_a_deadlock_leave_no_errors_behind() -> None:
    class State:
        def __init__(self) -> None:
            self.cond = threading.Condition()
            self.lock = threading.Lock()

    def waits_forever(s: State) -> None:
        with s.cond:
            s.cond.wait()

    def releases_unlocked(s: State) -> None:
        s.lock.release()

    # The deadlocked waiter unwinds through `with s.cond` without holding
    # the lock: that is not an error of the program.
    first = explore_all(State, [waits_forever], deadlock_timeout=60.0)
    assert first.deadlock == [0]
    assert first.errors == {}
    # A later execution on the same worker threads still reports the
    # program's own misuse.
    second = explore_all(State, [releases_unlocked])
    assert isinstance(second.errors.get(0), RuntimeError)
