"""Real races in third-party libraries, found with the default options.

Each case drives a library the way a multi-threaded program would, calling
its public API from two threads; the race itself is in the library's own
Python code (under ``site-packages``), which frontrun traces by default. No
``trace_packages`` is passed anywhere in this file. The versions are pinned
in ``scripts/requirements-dev.txt``; each case names the function whose
read-modify-write (or check-then-act) loses an update.

Every race has a safe twin: the same operations made thread-safe, either by
the library's own thread-safe variant or by a lock the program adds around
the call. The twin must hold under full DPOR with the search exhausted and
no execution given up. Locks are created in ``setup()`` (during the
exploration), so they are cooperative with or without the pytest plugin.
"""

from __future__ import annotations

import datetime
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boltons.cacheutils
import boltons.setutils
import cached_property
import cachetools
import frontrun
import pybreaker
import pytest
import schedule
import sqlalchemy.util._collections as sa_collections
import urllib3
from pydispatch import dispatcher


@dataclass
class Case:
    library: str
    #: The library function that holds the racy code.
    where: str
    setup: Callable[[], Any]
    threads: list[Callable[[Any], Any]]
    invariant: Callable[[Any], bool]
    #: The same program made thread-safe.
    safe_setup: Callable[[], Any]
    safe_threads: list[Callable[[Any], Any]]

    @property
    def id(self) -> str:
        return f"{self.library}:{self.where}"


def explore(setup: Any, threads: list[Any], invariant: Any, **kwargs: Any) -> frontrun.InterleavingResult:
    # The default options, except I/O detection: these races are in pure
    # Python code, and the preload library is not loaded under plain pytest.
    return frontrun.explore_dpor(setup, threads, invariant, detect_io=False, **kwargs)


class Locked:
    """A library object with a lock the program adds around every call."""

    def __init__(self, obj: Any) -> None:
        self.obj = obj
        self.lock = threading.Lock()


def locked(work: Callable[[Any], Any]) -> Callable[[Locked], Any]:
    def run(state: Locked) -> Any:
        with state.lock:
            return work(state.obj)

    run.__name__ = f"locked_{getattr(work, '__name__', 'work')}"
    return run


def with_lock(setup: Callable[[], Any]) -> Callable[[], Locked]:
    return lambda: Locked(setup())


def unwrap(invariant: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda state: invariant(state.obj if isinstance(state, Locked) else state)


CASES: list[Case] = []


def case(library: str, where: str, setup: Any, threads: list[Any], invariant: Any, safe: Any = None) -> None:
    """Register a race; ``safe`` is ``(setup, threads)`` of the twin, by
    default the same threads under a lock the program adds."""
    if safe is None:
        safe = (with_lock(setup), [locked(t) for t in threads])
    CASES.append(Case(library, where, setup, threads, unwrap(invariant), safe[0], safe[1]))


# -- cachetools ----------------------------------------------------------------
# Cache.__setitem__ adds the new item's size with `self.__currsize +=
# diffsize`; two insertions of different keys can lose one.


def put_a(cache: Any) -> None:
    cache["a"] = 1


def put_b(cache: Any) -> None:
    cache["b"] = 2


def size_matches(cache: Any) -> bool:
    return cache.currsize == len(cache)


case("cachetools", "Cache.__setitem__", lambda: cachetools.Cache(maxsize=10), [put_a, put_b], size_matches)

# LRUCache at capacity: both insertions see a full cache and evict, or both
# see room and the cache ends above its maxsize.
case(
    "cachetools",
    "LRUCache.__setitem__ (eviction)",
    lambda: cachetools.LRUCache(maxsize=1),
    [put_a, put_b],
    lambda cache: len(cache) == 1 and cache.currsize == 1,
)


# cached(info=True) without a lock counts misses with `misses += 1` on a
# closure cell; with lock= (the library's thread-safe form) it does not lose
# any.
def counted(lock: Any) -> Callable[[], Any]:
    def make() -> Any:
        kwargs = {"lock": lock()} if lock else {}
        return cachetools.cached(cachetools.Cache(maxsize=10), info=True, **kwargs)(lambda n: n * 2)

    return make


def call_1(fn: Any) -> None:
    fn(1)


def call_2(fn: Any) -> None:
    fn(2)


case(
    "cachetools",
    "cached (info=True, no lock)",
    counted(None),
    [call_1, call_2],
    lambda fn: fn.cache_info().misses == 2 and fn.cache_info().currsize == 2,
    safe=(counted(lambda: threading.Lock()), [call_1, call_2]),
)


# -- urllib3 -------------------------------------------------------------------
# HTTPConnectionPool._new_conn counts with `self.num_connections += 1`
# (no connection is opened: HTTPConnection connects lazily).
def new_conn(pool: Any) -> None:
    pool._new_conn()


case(
    "urllib3",
    "HTTPConnectionPool._new_conn",
    lambda: urllib3.HTTPConnectionPool("127.0.0.1", 9, maxsize=2),
    [new_conn, new_conn],
    lambda pool: pool.num_connections == 2,
)


# -- SQLAlchemy ----------------------------------------------------------------
# ScopedRegistry.__call__ (behind scoped_session): a miss calls createfunc
# before setdefault, so two threads in one scope both create an object.
class Registry:
    def __init__(self) -> None:
        self.created: list[object] = []
        self.registry = sa_collections.ScopedRegistry(self.create, lambda: "request-1")

    def create(self) -> object:
        obj = object()
        self.created.append(obj)
        return obj


def get_scoped(r: Registry) -> None:
    r.registry()


case("SQLAlchemy", "ScopedRegistry.__call__", Registry, [get_scoped, get_scoped], lambda r: len(r.created) == 1)


# LRUCache._inc_counter: `self._counter += 1` outside the cache's mutex,
# called by every get.
def sa_cache() -> Any:
    cache = sa_collections.LRUCache(capacity=10)
    cache["k"] = 1
    return cache


def sa_get(cache: Any) -> None:
    cache.get("k")


case("SQLAlchemy", "LRUCache._inc_counter", sa_cache, [sa_get, sa_get], lambda cache: cache._counter == 3)


# -- pybreaker -----------------------------------------------------------------
# Two CircuitBreakers sharing one state storage (as pybreaker supports):
# each serialises its own calls with its own lock, but
# CircuitMemoryStorage.increment_counter is `self._fail_counter += 1`.
class Flaky(Exception):
    pass


def fail() -> None:
    raise Flaky


class Breakers:
    def __init__(self, shared: bool) -> None:
        self.storage = pybreaker.CircuitMemoryStorage(pybreaker.STATE_CLOSED)
        one = pybreaker.CircuitBreaker(fail_max=5, state_storage=self.storage)
        self.breakers = [one, pybreaker.CircuitBreaker(fail_max=5, state_storage=self.storage)]
        if shared:
            self.breakers = [one, one]


def fail_through(i: int) -> Callable[[Breakers], None]:
    def run(b: Breakers) -> None:
        try:
            b.breakers[i].call(fail)
        except Flaky:
            pass

    run.__name__ = f"fail_through_{i}"
    return run


case(
    "pybreaker",
    "CircuitMemoryStorage.increment_counter",
    lambda: Breakers(shared=False),
    [fail_through(0), fail_through(1)],
    lambda b: b.storage.counter == 2,
    # One breaker for both threads: its lock serialises the whole call.
    safe=(lambda: Breakers(shared=True), [fail_through(0), fail_through(1)]),
)


# -- PyDispatcher --------------------------------------------------------------
# dispatcher.connect creates the per-sender table with
# `if senderkey in connections: ... else: connections[senderkey] = signals = {}`,
# and the per-signal list the same way; two connects can each create one, and
# the receiver registered in the table that loses is gone.
SENDER = object()


class Signals:
    def __init__(self, first_signal: str | None) -> None:
        dispatcher.connections.clear()
        dispatcher.senders.clear()
        dispatcher.sendersBack.clear()
        self.heard: list[str] = []
        if first_signal is not None:
            # The sender is known: the race moves one level down.
            dispatcher.connect(self.other, signal=first_signal, sender=SENDER, weak=False)

    def one(self) -> None:
        self.heard.append("one")

    def two(self) -> None:
        self.heard.append("two")

    def other(self) -> None:
        pass


def connect_one(s: Signals) -> None:
    dispatcher.connect(s.one, signal="changed", sender=SENDER, weak=False)


def connect_two(s: Signals) -> None:
    dispatcher.connect(s.two, signal="changed", sender=SENDER, weak=False)


def both_receive(s: Signals) -> bool:
    receivers = list(dispatcher.getReceivers(SENDER, "changed"))
    return len(receivers) == 2


case(
    "PyDispatcher",
    "connect (per-sender table)",
    lambda: Signals(None),
    [connect_one, connect_two],
    both_receive,
)
case(
    "PyDispatcher",
    "connect (per-signal list)",
    lambda: Signals("other"),
    [connect_one, connect_two],
    both_receive,
)


# -- cached-property -----------------------------------------------------------
# cached_property.__get__ computes, then stores in the instance dict; two
# first reads both compute. threaded_cached_property is the library's
# thread-safe variant (an RLock around the computation).
def cached_holder(make_decorator: Callable[[], Any]) -> Callable[[], Any]:
    # The decorator (and the lock of the threaded variants) is made in
    # setup(), while the cooperative primitives are installed.
    def make() -> Any:
        decorator = make_decorator()

        class Holder:
            def __init__(self) -> None:
                self.computed: list[int] = []

            def value(self) -> int:
                self.computed.append(1)
                return 42

            value = decorator(value)  # type: ignore[assignment]

        return Holder()

    return make


def read_value(h: Any) -> None:
    assert h.value == 42


def computed_once(h: Any) -> bool:
    return len(h.computed) == 1


case(
    "cached-property",
    "cached_property.__get__",
    cached_holder(lambda: cached_property.cached_property),
    [read_value, read_value],
    computed_once,
    safe=(cached_holder(lambda: cached_property.threaded_cached_property), [read_value, read_value]),
)
case(
    "cached-property",
    "cached_property_with_ttl.__get__",
    cached_holder(lambda: cached_property.cached_property_with_ttl(ttl=60)),
    [read_value, read_value],
    computed_once,
    safe=(
        cached_holder(lambda: cached_property.threaded_cached_property_with_ttl(ttl=60)),
        [read_value, read_value],
    ),
)


# -- schedule ------------------------------------------------------------------
# Scheduler.run_pending checks Job.should_run (next_run in the past), then
# runs the job, which reschedules it; two run_pending calls can both run it.
class Jobs:
    def __init__(self) -> None:
        self.runs: list[int] = []
        self.scheduler = schedule.Scheduler()
        job = self.scheduler.every(10).minutes.do(self.runs.append, 1)
        job.next_run = datetime.datetime.now() - datetime.timedelta(minutes=1)


def run_pending(j: Jobs) -> None:
    j.scheduler.run_pending()


case("schedule", "Scheduler.run_pending", Jobs, [run_pending, run_pending], lambda j: len(j.runs) == 1)


# -- boltons -------------------------------------------------------------------
# IndexedSet.add: `item_index_map[item] = len(item_list)`, then append; two
# adds of different items can record the same index.
def add_x(s: Any) -> None:
    s.add("x")


def add_y(s: Any) -> None:
    s.add("y")


case(
    "boltons",
    "IndexedSet.add",
    boltons.setutils.IndexedSet,
    [add_x, add_y],
    lambda s: sorted(s.item_index_map.values()) == [0, 1],
)


# ThresholdCounter.add: `self.total += 1`.
def count_x(c: Any) -> None:
    c.add("x")


def count_y(c: Any) -> None:
    c.add("y")


case(
    "boltons",
    "ThresholdCounter.add",
    boltons.cacheutils.ThresholdCounter,
    [count_x, count_y],
    lambda c: c.total == 2,
)

# cacheutils.cachedproperty: compute, then store in the instance dict.
case(
    "boltons",
    "cachedproperty.__get__",
    cached_holder(lambda: boltons.cacheutils.cachedproperty),
    [read_value, read_value],
    computed_once,
)


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_the_race_is_found_with_the_default_options(c: Case) -> None:
    result = explore(c.setup, c.threads, c.invariant)
    assert not result.property_holds, f"{c.id}: missed after {result.num_explored} executions"
    assert result.reproduction_successes == result.reproduction_attempts > 0


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_the_thread_safe_twin_holds(c: Case) -> None:
    # Full DPOR: every interleaving class, not only those within the
    # default preemption bound.
    result = explore(c.safe_setup, c.safe_threads, c.invariant, preemption_bound=None)
    assert result.property_holds, result.explanation
    assert result.exhausted, f"{c.id}: stopped after {result.num_explored} executions"
    assert not result.inconclusive, result.inconclusive


def test_the_suite_covers_enough_libraries() -> None:
    assert len(CASES) >= 15
    assert len({c.library for c in CASES}) >= 8


def test_library_code_operands_sit_where_the_interpreter_puts_them() -> None:
    # 3.11 publishes the stack pointer to the tracer, which compares it with
    # the statically computed depth of each instruction (0 on 3.12+, which
    # does not publish it).
    import frontrun._engine

    before = frontrun._engine.depth_mismatches()
    for c in CASES:
        explore(c.setup, c.threads, c.invariant, reproduce_on_failure=0)
    assert frontrun._engine.depth_mismatches() == before
