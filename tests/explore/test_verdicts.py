"""Three verdicts: a race found, a proof within stated bounds, or inconclusive.

Each test reproduces a way a result used to be green while part of the
search was skipped or given up.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
import select
import threading
import time
from collections import defaultdict
from typing import Any

import frontrun
import pytest
from _helpers import explore, explore_all
from frontrun import InconclusiveError, _coop

# Bound before the cooperative classes were installed, as a library that did
# `from threading import RLock` at import time would have it.
RealLock = _coop.original(threading, "Lock")
RealRLock = _coop.original(threading, "RLock")
# Module-level locks are wrapped as cooperative ones for an exploration
# (frontrun._adopt); one kept inside a container is out of its reach.
TUCKED_AWAY = [RealLock()]


# --- lazily created locks behind a wrapper: full DPOR must not skip ----------


def _wrapped(fn: Any) -> Any:
    @functools.wraps(fn)
    def inner(*args: Any, **kwargs: Any) -> Any:
        store = args[0]
        try:
            return fn(*args, **kwargs)
        except store.passes_through:
            raise

    return inner


class RateStore:
    """A window of entries per key, each key behind a lock made on first use."""

    passes_through = KeyError

    def __init__(self, locked: bool = True) -> None:
        self.locked = locked
        self.locks: defaultdict[str, Any] = defaultdict(threading.RLock)
        self.events: dict[str, list[int]] = {}

    def _take(self, key: str) -> bool:
        self.events.setdefault(key, [])
        try:
            entry = self.events[key][0]
        except IndexError:
            entry = None
        if entry:
            return False
        self.events[key][:0] = [1]
        return True

    @_wrapped
    def acquire(self, key: str) -> bool:
        if not self.locked:
            return self._take(key)
        with self.locks[key]:
            return self._take(key)


def _one_entry_each(store: RateStore) -> None:
    store.acquire("k")


def test_full_dpor_explores_locks_created_lazily_behind_a_wrapper_without_skipping() -> None:
    result = explore_all(RateStore, [_one_entry_each, _one_entry_each], lambda s: len(s.events["k"]) == 1)
    # (The suite's conftest also fails any full-DPOR exploration that ends
    # an execution sleep-set blocked.)
    assert result.inconclusive == []
    assert result.verdict == "holds" and result.exhausted
    bounded = explore(RateStore, [_one_entry_each, _one_entry_each], lambda s: len(s.events["k"]) == 1)
    assert bounded.verdict == "holds" and bounded.inconclusive == []


def test_the_same_store_without_its_lock_is_found_racy_by_full_dpor() -> None:
    result = explore(
        lambda: RateStore(locked=False),
        [_one_entry_each, _one_entry_each],
        lambda s: len(s.events["k"]) == 1,
        preemption_bound=None,
    )
    assert result.verdict == "race"
    assert result.property_holds is False


def test_reading_a_missing_defaultdict_key_is_a_write_that_orders_threads() -> None:
    # Both threads read d["k"]; the first to do so creates the list, so the
    # two reads do not commute: which list each thread got decides the end
    # state when one of them replaces the entry.
    class State:
        def __init__(self) -> None:
            self.d: defaultdict[str, list[int]] = defaultdict(list)
            self.got: list[list[int]] = []

    def take(s: State) -> None:
        s.got.append(s.d["k"])

    result = explore_all(State, [take, take], lambda s: s.got[0] is s.got[1])
    assert result.verdict == "holds" and result.exhausted
    # Two orders of the inserting reads, not one.
    assert result.num_explored >= 2


# --- executions given up make the result inconclusive ------------------------


class Counter:
    def __init__(self) -> None:
        self.value = 0


def _slow_increment(c: Counter) -> None:
    current = c.value
    # Blocked in C for real (a worker's time.sleep runs on the virtual clock).
    select.select([], [], [], 1)
    c.value = current + 1


def test_an_execution_that_times_out_is_inconclusive_never_green() -> None:
    result = explore(
        Counter, [_slow_increment, _slow_increment], lambda c: c.value == 2, timeout_per_run=0.2, max_executions=2
    )
    assert result.verdict == "inconclusive"
    assert result.property_holds is None
    assert not result.exhausted
    with pytest.raises(InconclusiveError) as info:
        result.assert_holds()
    assert isinstance(info.value, AssertionError)
    text = str(info.value)
    assert "timeout_per_run" in text
    assert "test_verdicts.py:" in text  # where the stuck thread was
    assert "What to do" in text


def _increment_under_module_lock(c: Counter) -> None:
    with TUCKED_AWAY[0]:
        current = c.value
        c.value = current + 1


def test_a_contended_lock_created_before_patching_ends_the_execution_at_once_as_inconclusive() -> None:
    start = time.monotonic()
    result = explore(Counter, [_increment_under_module_lock] * 2, lambda c: c.value == 2)
    assert time.monotonic() - start < 2.0  # not one timeout_per_run (5 s) per contended execution
    assert result.verdict == "inconclusive"
    reasons = [why for _, why in result.inconclusive]
    assert any("not cooperative" in why and "test_verdicts.py:" in why for why in reasons), reasons
    with pytest.raises(InconclusiveError, match="create it in setup"):
        result.assert_holds()


class CacheWithItsOwnRealLock:
    """Like a library cache whose class bound ``RLock`` at import time: the
    lock is created in ``setup()``, but from the real class."""

    def __init__(self) -> None:
        self._lock = RealRLock()
        self.hits: dict[str, int] = {}

    def hit(self, key: str) -> None:
        with self._lock:
            if key not in self.hits:
                self.hits[key] = 0
            self.hits[key] += 1


def test_a_real_lock_only_the_state_refers_to_is_scheduled_conclusively() -> None:
    start = time.monotonic()
    result = explore(CacheWithItsOwnRealLock, [lambda c: c.hit("a"), lambda c: c.hit("a")], lambda c: c.hits["a"] == 2)
    assert time.monotonic() - start < 1.0
    assert result.verdict == "holds" and result.exhausted and result.inconclusive == []


class DictCacheWithItsOwnRealLock(dict):  # type: ignore[type-arg]
    """The same lock on a ``dict`` subclass (boltons' ``LRU`` is one): the
    attributes sit beside the items."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = RealRLock()

    def put(self, key: str, value: int) -> None:
        with self._lock:
            if len(self) >= 1:
                self.clear()
            self[key] = value


def test_a_real_lock_on_a_dict_subclass_is_scheduled_conclusively_too() -> None:
    result = explore(
        DictCacheWithItsOwnRealLock, [lambda c: c.put("a", 1), lambda c: c.put("b", 2)], lambda c: len(c) == 1
    )
    assert result.verdict == "holds" and result.exhausted and result.inconclusive == [], result.inconclusive


def test_the_boltons_lru_with_its_own_rlock_runs_conclusively() -> None:
    import boltons.cacheutils as cacheutils  # a test dependency (scripts/requirements-dev.txt)

    start = time.monotonic()
    for bound in (2, None):
        result = explore(
            lambda: cacheutils.LRU(max_size=1),
            [lambda c: c.__setitem__("a", 1), lambda c: c.__setitem__("b", 2)],
            lambda c: len(c) == 1,
            preemption_bound=bound,
        )
        assert result.verdict == "holds" and result.exhausted and result.inconclusive == [], result.inconclusive
    assert time.monotonic() - start < 1.0


def test_a_real_lock_shared_with_a_condition_is_left_real() -> None:
    # Swapping a lock that a Condition was built on would split one lock in
    # two; the state walk leaves it alone.
    class State:
        def __init__(self) -> None:
            self.lock = RealLock()
            self.cond = _coop.original(threading, "Condition")(self.lock)

    seen: list[Any] = []
    explore(State, [lambda s: seen.append(type(s.lock))], lambda s: True)
    assert seen and seen[0] is type(RealLock())


class Holder:
    def __init__(self, lock: Any) -> None:
        self.lock = lock


class ManyLocks:
    """A counter beside 300 locks, each the only attribute of its holder:
    the workers take one of them, the others are never touched."""

    def __init__(self, make_lock: Any) -> None:
        self.value = 0
        self.holders = [Holder(make_lock()) for _ in range(300)]


def _lock_made_in_setup() -> Any:
    return threading.Lock()  # looked up now: the cooperative class, in setup()


def _increment_under_lock(index: int) -> Any:
    def work(s: ManyLocks) -> None:
        with s.holders[index].lock:
            current = s.value
            s.value = current + 1

    return work


@pytest.mark.parametrize(
    "make_lock", [RealLock, RealRLock, _lock_made_in_setup], ids=["real Lock", "real RLock", "cooperative Lock"]
)
def test_the_one_lock_the_workers_take_among_many_untouched_ones_is_scheduled_as_alone(make_lock: Any) -> None:
    # The state walk does little for the 299 locks nobody takes; the one
    # taken must still be made cooperative (or be cooperative) and keyed
    # the same in every execution: the search is the one of a single lock.
    workers = [_increment_under_lock(157), _increment_under_lock(157)]
    crowded = explore_all(lambda: ManyLocks(make_lock), workers, lambda s: s.value == 2)
    assert crowded.verdict == "holds" and crowded.exhausted and crowded.inconclusive == []

    class OneLock:
        def __init__(self) -> None:
            self.value = 0
            self.holders = {157: Holder(make_lock())}

    alone = explore_all(OneLock, workers, lambda s: s.value == 2)
    assert alone.verdict == "holds" and alone.exhausted
    assert crowded.num_explored == alone.num_explored == 2


@pytest.mark.parametrize("make_lock", [RealLock, _lock_made_in_setup], ids=["real Lock", "cooperative Lock"])
def test_two_workers_under_two_different_locks_of_many_still_race(make_lock: Any) -> None:
    workers = [_increment_under_lock(3), _increment_under_lock(250)]
    result = explore(lambda: ManyLocks(make_lock), workers, lambda s: s.value == 2)
    assert result.verdict == "race"
    assert result.inconclusive == []
    assert "ManyLocks.value" in (result.explanation or "")


# --- budgets said out loud ---------------------------------------------------


def _increment(c: Counter) -> None:
    current = c.value
    c.value = current + 1


def test_a_bounded_search_says_its_bound() -> None:
    # With no preemption allowed, the bounded search (the serial orders)
    # finishes before the unbounded one beside it: only the bound is proven.
    result = explore(Counter, [_increment] * 3, lambda c: True, preemption_bound=0)
    assert result.verdict == "holds" and result.exhausted and not result.complete
    assert result.scope.startswith("holds within preemption_bound=0:")
    assert "holds within preemption_bound=0" in (result.explanation or "").lower()
    full = explore_all(Counter, [_increment] * 3)
    assert full.complete
    assert full.scope.startswith("holds: every interleaving explored")


def test_a_bounded_search_whose_unbounded_half_finished_first_claims_everything() -> None:
    # Three increments under the default bound: some traces need three
    # preemptions, but the unbounded search is the cheaper one here and
    # finishes first, so every interleaving was explored after all.
    result = explore(Counter, [_increment] * 3, lambda c: True)
    assert result.verdict == "holds" and result.exhausted and result.complete
    assert result.scope.startswith("holds: every interleaving explored")


def test_max_executions_stops_the_search_and_says_so_without_failing() -> None:
    result = explore(Counter, [_increment] * 3, lambda c: True, max_executions=3)
    assert result.num_explored == 3
    assert result.verdict == "holds" and not result.exhausted
    assert result.stopped_by == "max_executions=3"
    assert "3 executions run: stopped by max_executions=3 before the search was exhausted" in result.scope
    result.assert_holds()


def test_max_executions_that_happens_to_cover_everything_is_exhausted() -> None:
    everything = explore_all(Counter, [_increment] * 2).num_explored
    result = explore_all(Counter, [_increment] * 2, max_executions=everything)
    assert result.exhausted and result.stopped_by is None


def test_total_timeout_is_enforced_inside_an_execution() -> None:
    def endless(c: Counter) -> None:
        while True:
            c.value = c.value + 1

    start = time.monotonic()
    result = explore(Counter, [endless, _increment], lambda c: True, total_timeout=0.5, max_branches=10**9)
    assert time.monotonic() - start < 3.0
    assert result.stopped_by == "total_timeout=0.5"
    assert not result.exhausted and result.verdict == "holds"


# --- async callables refused until async exploration exists ------------------


async def _async_increment(c: Counter) -> None:
    c.value += 1


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"threads": [_async_increment, _increment]}, "threads[0]"),
        ({"setup": _async_increment}, "setup"),
        ({"invariant": _async_increment}, "invariant"),
        ({"threads": [_increment, functools.partial(_async_increment)]}, "threads[1]"),
        ({"threads": [lambda c: _async_increment(c)]}, "threads[0] returned a coroutine"),
        ({"invariant": lambda c: asyncio.sleep(0)}, "invariant returned a coroutine"),
    ],
)
def test_async_callables_are_refused_naming_the_parameter(override: dict[str, Any], named: str) -> None:
    kwargs: dict[str, Any] = {"setup": Counter, "threads": [_increment], "invariant": lambda c: True}
    kwargs.update(override)
    with pytest.raises(TypeError, match=named.replace("[", r"\[").replace("]", r"\]")):
        frontrun.explore_dpor(kwargs["setup"], kwargs["threads"], kwargs["invariant"], detect_io=False)


# --- nothing outlives an exploration -----------------------------------------


def _lost_update(c: Counter) -> None:
    current = c.value
    c.value = current + 1


def test_no_thread_an_exploration_starts_outlives_it() -> None:
    before = set(threading.enumerate())
    failing = explore(Counter, [_lost_update, _lost_update], lambda c: c.value == 2)
    assert failing.verdict == "race" and failing.reproduction_attempts == 3
    given_up = explore(Counter, [_slow_increment, _increment], lambda c: True, timeout_per_run=0.2, max_executions=1)
    assert given_up.verdict == "inconclusive"
    assert set(threading.enumerate()) == before


def test_a_worker_left_in_a_c_call_does_not_disturb_the_next_exploration() -> None:
    # select.select is a C call: the given-up worker is released, not
    # interrupted (an asynchronous exception there wedged 3.11's tracing).
    given_up = explore(Counter, [_slow_increment, _increment], lambda c: True, timeout_per_run=0.2, max_executions=1)
    assert given_up.verdict == "inconclusive"
    start = time.monotonic()
    result = explore(Counter, [_lost_update, _lost_update], lambda c: c.value == 2)
    assert result.verdict == "race" and result.num_explored == 2
    assert time.monotonic() - start < 1.0


def test_a_setup_that_never_returns_ends_the_exploration_inconclusive_with_where_it_was() -> None:
    calls = []

    def setup() -> Counter:
        calls.append(1)
        while len(calls) > 1:  # the second setup() waits for good, as a retry loop would
            time.sleep(0.01)
        return Counter()

    start = time.monotonic()
    result = explore(setup, [_increment, _increment], lambda c: True, timeout_per_run=0.5)
    assert time.monotonic() - start < 5.0
    assert result.verdict == "inconclusive"
    [(number, why)] = result.inconclusive
    assert number == 2
    assert "setup() did not return within 0.5s" in why and "test_verdicts.py:" in why and "in setup" in why


def test_a_setup_blocked_inside_a_c_call_is_bounded_too() -> None:
    # os.read on a pipe nobody writes blocks in C: an asynchronous exception
    # cannot reach it, so the bound must not depend on one.
    read_end, write_end = os.pipe()
    try:

        def setup() -> Counter:
            os.read(read_end, 1)
            return Counter()

        start = time.monotonic()
        result = explore(setup, [_increment, _increment], lambda c: True, timeout_per_run=0.3)
        assert time.monotonic() - start < 3.0
        assert result.verdict == "inconclusive" and result.property_holds is None
        [(number, why)] = result.inconclusive
        assert number == 1
        assert "setup() did not return within 0.3s" in why and "in setup" in why
        # The abandoned call ends when its C call returns, without a trace.
        os.write(write_end, b"x")
        again = explore(Counter, [_lost_update, _lost_update], lambda c: c.value == 2)
        assert again.verdict == "race" and again.num_explored == 2
    finally:
        os.close(read_end)
        os.close(write_end)


def test_an_invariant_blocked_inside_a_c_call_is_bounded_too() -> None:
    read_end, write_end = os.pipe()
    try:
        result = explore(Counter, [_increment], lambda c: bool(os.read(read_end, 1)), timeout_per_run=0.3)
        assert result.verdict == "inconclusive"
        assert "the invariant did not return within 0.3s" in result.inconclusive[0][1]
        os.write(write_end, b"x")
    finally:
        os.close(read_end)
        os.close(write_end)


def test_setup_and_the_invariant_see_the_callers_context_variables() -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    var.set("the test's")
    seen = []

    def setup() -> Counter:
        seen.append(var.get())
        return Counter()

    def invariant(c: Counter) -> bool:
        seen.append(var.get())
        return True

    explore(setup, [_increment], invariant)
    assert seen and set(seen) == {"the test's"}


def test_an_invariant_that_never_returns_is_bounded_too() -> None:
    def stuck(c: Counter) -> bool:
        while True:
            pass

    result = explore(Counter, [_increment], stuck, timeout_per_run=0.3)
    assert result.verdict == "inconclusive"
    assert "the invariant did not return within 0.3s" in result.inconclusive[0][1]
