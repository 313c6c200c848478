"""Timed waits in explored threads: they expire when every thread waits
(nothing else can happen first), and the program sees what a real timeout
gives (False, queue.Empty, BrokenBarrierError), without real time passing."""

from __future__ import annotations

import queue
import threading
import time

from _sync_helpers import explore_all


def quick(result) -> None:
    assert result.inconclusive == []
    assert result.exhausted


def test_lock_acquire_times_out_only_while_the_holder_is_stuck() -> None:
    class State:
        def __init__(self) -> None:
            self.lock = threading.Lock()
            self.never = threading.Event()
            self.outcomes: list[bool] = []

    def holder(s: State) -> None:
        with s.lock:
            s.never.wait(timeout=30)

    def contender(s: State) -> None:
        got = s.lock.acquire(timeout=30)
        s.outcomes.append(got)
        if got:
            s.lock.release()

    seen: set[tuple[bool, ...]] = set()

    def record(s: State) -> bool:
        seen.add(tuple(s.outcomes))
        return True

    start = time.monotonic()
    # When several timed waits are pending, the lowest-numbered thread's
    # expires first: here the contender's.
    result = explore_all(State, [contender, holder], record)
    assert time.monotonic() - start < 20
    quick(result)
    assert result.property_holds
    # Taken before the holder, or timed out while it waits.
    assert seen == {(True,), (False,)}


def test_event_wait_timeout_returns_false() -> None:
    class State:
        def __init__(self) -> None:
            self.ev = threading.Event()
            self.result: bool | None = None

    def waiter(s: State) -> None:
        s.result = s.ev.wait(timeout=10)

    def setter(s: State) -> None:
        s.ev.set()

    outcomes: set[bool | None] = set()

    def record(s: State) -> bool:
        outcomes.add(s.result)
        return True

    quick(explore_all(State, [waiter], record))
    assert outcomes == {False}
    outcomes.clear()
    quick(explore_all(State, [waiter, setter], record))
    assert outcomes == {True}


def test_queue_get_timeout_raises_empty() -> None:
    class State:
        def __init__(self) -> None:
            self.q: queue.Queue[int] = queue.Queue()
            self.got: object = None

    def getter(s: State) -> None:
        try:
            s.got = s.q.get(timeout=5)
        except queue.Empty:
            s.got = "empty"

    result = explore_all(State, [getter], lambda s: s.got == "empty")
    quick(result)
    assert result.property_holds


def test_condition_wait_timeout_and_wait_for() -> None:
    class State:
        def __init__(self) -> None:
            self.cond = threading.Condition()
            self.flag = False
            self.results: list[object] = []

    def waiter(s: State) -> None:
        with s.cond:
            s.results.append(s.cond.wait(timeout=3))
            s.results.append(s.cond.wait_for(lambda: s.flag, timeout=3))

    result = explore_all(State, [waiter], lambda s: s.results == [False, False])
    quick(result)
    assert result.property_holds


def test_barrier_timeout_breaks_the_barrier() -> None:
    class State:
        def __init__(self) -> None:
            self.barrier = threading.Barrier(3, timeout=2)
            self.outcomes: list[str] = []

    def party(s: State) -> None:
        try:
            s.barrier.wait()
            s.outcomes.append("passed")
        except threading.BrokenBarrierError:
            s.outcomes.append("broken")

    result = explore_all(State, [party, party], lambda s: s.outcomes == ["broken", "broken"])
    quick(result)
    assert result.property_holds


def test_semaphore_acquire_timeout_returns_false() -> None:
    class State:
        def __init__(self) -> None:
            self.sem = threading.Semaphore(0)
            self.got: bool | None = None

    def taker(s: State) -> None:
        s.got = s.sem.acquire(timeout=1)

    result = explore_all(State, [taker], lambda s: s.got is False)
    quick(result)
    assert result.property_holds
