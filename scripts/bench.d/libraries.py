"""Real races in third-party libraries, as benchmark workloads.

Each workload calls a library's public API from two threads; the lost
update or check-then-act is in the library's own code under
``site-packages`` (the same races as tests/libraries/, written again here
so that this file imports neither pytest nor this project: it runs under
both tools). Each has a safe twin, the same calls made thread-safe by the
library's own thread-safe form or by a lock the program takes around them;
locks are made in ``setup()``, so both tools see them as their own
cooperative locks.

    python libraries.py --pins REQUIREMENTS   # the pinned versions, one a line

The library versions are those pinned in scripts/requirements-dev.txt
(``--pins`` reads them from there, for the bench venvs). A workload named
``X`` is the race, ``X_safe`` its twin.
"""

from __future__ import annotations

import datetime
import importlib
import re
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Library:
    #: Distribution name (as pinned) and the top-level modules it installs.
    distribution: str
    modules: tuple[str, ...]
    #: The modules the workloads use, imported before the clock starts (as a
    #: test module imports them), not inside the first execution's setup().
    imports: tuple[str, ...]

    def patterns(self) -> list[str]:
        """Module-name patterns covering the package and its submodules,
        in the form both tools accept."""
        return [p for m in self.modules for p in (m, f"{m}.*")]


LIBRARIES = {
    "cachetools": Library("cachetools", ("cachetools",), ("cachetools",)),
    "urllib3": Library("urllib3", ("urllib3",), ("urllib3",)),
    "SQLAlchemy": Library("SQLAlchemy", ("sqlalchemy",), ("sqlalchemy.util._collections",)),
    "pybreaker": Library("pybreaker", ("pybreaker",), ("pybreaker",)),
    "PyDispatcher": Library("PyDispatcher", ("pydispatch",), ("pydispatch.dispatcher",)),
    "cached-property": Library("cached-property", ("cached_property",), ("cached_property",)),
    "schedule": Library("schedule", ("schedule",), ("schedule",)),
    "boltons": Library("boltons", ("boltons",), ("boltons.setutils", "boltons.cacheutils")),
}


class Guarded:
    """A library object and a lock the program takes around each call."""

    def __init__(self, obj: Any) -> None:
        self.obj = obj
        self.lock = threading.Lock()


def guarded(call: Callable[[Any], Any]) -> Callable[[Guarded], Any]:
    def run(g: Guarded) -> Any:
        with g.lock:
            return call(g.obj)

    return run


@dataclass(frozen=True)
class Race:
    name: str
    library: str
    #: Where the racy code is, in the library.
    where: str
    setup: Callable[[], Any]
    threads: tuple[Callable[[Any], Any], ...]
    invariant: Callable[[Any], bool]
    #: The twin's setup and threads; None: the same threads under a lock.
    safe: tuple[Callable[[], Any], tuple[Callable[[Any], Any], ...]] | None = None

    def twin(self) -> tuple[Callable[[], Any], list[Callable[[Any], Any]], Callable[[Any], bool]]:
        check = self.invariant

        def invariant(state: Any) -> bool:
            return check(state.obj if isinstance(state, Guarded) else state)

        if self.safe is not None:
            return self.safe[0], list(self.safe[1]), invariant
        make = self.setup
        return (lambda: Guarded(make())), [guarded(t) for t in self.threads], invariant


# -- cachetools: Cache.__setitem__ adds the item's size with a += on a
# private attribute; cached(info=True) without a lock counts misses with a
# += on a closure cell.


def store_a(cache: Any) -> None:
    cache["a"] = 1


def store_b(cache: Any) -> None:
    cache["b"] = 2


def cachetools_cache() -> Any:
    import cachetools

    return cachetools.Cache(maxsize=8)


def cachetools_counted(with_lock: bool) -> Callable[[], Any]:
    def make() -> Any:
        import cachetools

        lock = {"lock": threading.Lock()} if with_lock else {}
        return cachetools.cached(cachetools.Cache(maxsize=8), info=True, **lock)(lambda k: k + 1)

    return make


def call_with_1(fn: Any) -> None:
    fn(1)


def call_with_2(fn: Any) -> None:
    fn(2)


def two_misses(fn: Any) -> bool:
    info = fn.cache_info()
    return info.misses == 2 and info.currsize == 2


# -- urllib3: HTTPConnectionPool._new_conn counts connections with a +=
# (HTTPConnection connects lazily: nothing is opened).


def urllib3_pool() -> Any:
    import urllib3

    return urllib3.HTTPConnectionPool("127.0.0.1", 9, maxsize=2)


def open_connection(pool: Any) -> None:
    pool._new_conn()


# -- SQLAlchemy: ScopedRegistry.__call__ creates on a miss before it stores;
# LRUCache.get bumps a counter outside the cache's mutex.


class Scoped:
    def __init__(self) -> None:
        from sqlalchemy.util import _collections

        self.made: list[object] = []
        self.registry = _collections.ScopedRegistry(self.make, lambda: "one-scope")

    def make(self) -> object:
        obj = object()
        self.made.append(obj)
        return obj


def scoped_get(s: Scoped) -> None:
    s.registry()


def sqlalchemy_lru() -> Any:
    from sqlalchemy.util import _collections

    cache = _collections.LRUCache(capacity=8)
    cache["key"] = "value"
    return cache


def lru_get(cache: Any) -> None:
    cache.get("key")


# -- pybreaker: two breakers over one memory storage; each has its own lock,
# the storage's failure counter is a +=.


class Failure(Exception):
    pass


def failing() -> None:
    raise Failure


class Breakers:
    def __init__(self, one_breaker: bool) -> None:
        import pybreaker

        self.storage = pybreaker.CircuitMemoryStorage(pybreaker.STATE_CLOSED)
        first = pybreaker.CircuitBreaker(fail_max=5, state_storage=self.storage)
        second = first if one_breaker else pybreaker.CircuitBreaker(fail_max=5, state_storage=self.storage)
        self.breakers = (first, second)


def through_breaker(i: int) -> Callable[[Breakers], None]:
    def run(b: Breakers) -> None:
        try:
            b.breakers[i].call(failing)
        except Failure:
            pass

    return run


# -- PyDispatcher: connect() creates the sender's table when it finds none;
# two first connects can each create one and one receiver is lost.

SENDER = object()


class Receivers:
    def __init__(self) -> None:
        from pydispatch import dispatcher

        dispatcher.connections.clear()
        dispatcher.senders.clear()
        dispatcher.sendersBack.clear()
        self.calls: list[str] = []

    def first(self) -> None:
        self.calls.append("first")

    def second(self) -> None:
        self.calls.append("second")


def connect_first(r: Receivers) -> None:
    from pydispatch import dispatcher

    dispatcher.connect(r.first, signal="event", sender=SENDER, weak=False)


def connect_second(r: Receivers) -> None:
    from pydispatch import dispatcher

    dispatcher.connect(r.second, signal="event", sender=SENDER, weak=False)


def both_connected(r: Receivers) -> bool:
    from pydispatch import dispatcher

    return len(list(dispatcher.getReceivers(SENDER, "event"))) == 2


# -- cached-property: cached_property.__get__ computes, then stores; two
# first reads both compute. threaded_cached_property holds an RLock.


def property_holder(threaded: bool) -> Callable[[], Any]:
    def make() -> Any:
        import cached_property

        decorator = cached_property.threaded_cached_property if threaded else cached_property.cached_property

        class Holder:
            def __init__(self) -> None:
                self.computed = 0

            @decorator
            def answer(self) -> int:
                self.computed += 1
                return 42

        return Holder()

    return make


def read_answer(h: Any) -> None:
    if h.answer != 42:
        raise AssertionError("wrong value")


# -- schedule: run_pending checks should_run, then runs the job (which
# reschedules it); two run_pending calls can both run one due job.


class DueJob:
    def __init__(self) -> None:
        import schedule

        self.ran: list[int] = []
        self.scheduler = schedule.Scheduler()
        job = self.scheduler.every(5).minutes.do(self.ran.append, 1)
        job.next_run = datetime.datetime.now() - datetime.timedelta(seconds=30)


def run_due(d: DueJob) -> None:
    d.scheduler.run_pending()


# -- boltons: IndexedSet.add records len(item_list) as the new item's index
# before appending; ThresholdCounter.add counts with a +=.


def indexed_set() -> Any:
    from boltons.setutils import IndexedSet

    return IndexedSet()


def threshold_counter() -> Any:
    from boltons.cacheutils import ThresholdCounter

    return ThresholdCounter()


def add_p(s: Any) -> None:
    s.add("p")


def add_q(s: Any) -> None:
    s.add("q")


RACES: dict[str, Race] = {
    r.name: r
    for r in (
        Race(
            "cachetools_setitem",
            "cachetools",
            "Cache.__setitem__",
            cachetools_cache,
            (store_a, store_b),
            lambda c: c.currsize == len(c),
        ),
        Race(
            "cachetools_cached_info",
            "cachetools",
            "cached(info=True)",
            cachetools_counted(False),
            (call_with_1, call_with_2),
            two_misses,
            safe=(cachetools_counted(True), (call_with_1, call_with_2)),
        ),
        Race(
            "urllib3_new_conn",
            "urllib3",
            "HTTPConnectionPool._new_conn",
            urllib3_pool,
            (open_connection, open_connection),
            lambda p: p.num_connections == 2,
        ),
        Race(
            "sqlalchemy_scoped_registry",
            "SQLAlchemy",
            "ScopedRegistry.__call__",
            Scoped,
            (scoped_get, scoped_get),
            lambda s: len(s.made) == 1,
        ),
        Race(
            "sqlalchemy_lru_counter",
            "SQLAlchemy",
            "LRUCache._inc_counter",
            sqlalchemy_lru,
            (lru_get, lru_get),
            lambda c: c._counter == 3,
        ),
        Race(
            "pybreaker_shared_storage",
            "pybreaker",
            "CircuitMemoryStorage.increment_counter",
            lambda: Breakers(one_breaker=False),
            (through_breaker(0), through_breaker(1)),
            lambda b: b.storage.counter == 2,
            safe=(lambda: Breakers(one_breaker=True), (through_breaker(0), through_breaker(1))),
        ),
        Race(
            "pydispatcher_connect",
            "PyDispatcher",
            "dispatcher.connect",
            Receivers,
            (connect_first, connect_second),
            both_connected,
        ),
        Race(
            "cached_property_get",
            "cached-property",
            "cached_property.__get__",
            property_holder(False),
            (read_answer, read_answer),
            lambda h: h.computed == 1,
            safe=(property_holder(True), (read_answer, read_answer)),
        ),
        Race(
            "schedule_run_pending",
            "schedule",
            "Scheduler.run_pending",
            DueJob,
            (run_due, run_due),
            lambda d: len(d.ran) == 1,
        ),
        Race(
            "boltons_indexed_set",
            "boltons",
            "IndexedSet.add",
            indexed_set,
            (add_p, add_q),
            lambda s: sorted(s.item_index_map.values()) == [0, 1],
        ),
        Race(
            "boltons_threshold_counter",
            "boltons",
            "ThresholdCounter.add",
            threshold_counter,
            (add_p, add_q),
            lambda c: c.total == 2,
        ),
    )
}


# -- not a race: each worker fills a cache of its own (cachetools code on
# objects no other thread touches), then adds its size to a shared total
# without a lock. The only conflicts are the program's own, so tracing the
# library should cost time per instruction but no execution.

PRIVATE_CACHES = (
    "N threads each fill their own cachetools.LRUCache (16 keys, 4 kept), then add its size to a shared total"
)


class Total:
    def __init__(self) -> None:
        self.value = 0


def fill_own_cache(t: Total) -> None:
    import cachetools

    cache = cachetools.LRUCache(maxsize=4)
    for k in range(16):
        cache[k] = k
    value = t.value
    t.value = value + cache.currsize


def private_caches(n: int) -> tuple[Callable[[], Any], list[Callable[[Any], Any]], Callable[[Any], bool]]:
    return Total, [fill_own_cache] * n, lambda t: True


def find(name: str) -> tuple[Race, bool] | None:
    """The race a workload name names, and whether it is the safe twin."""
    if name in RACES:
        return RACES[name], False
    if name.endswith("_safe") and name[: -len("_safe")] in RACES:
        return RACES[name[: -len("_safe")]], True
    return None


def is_library_workload(name: str) -> bool:
    return name == "private_caches" or find(name) is not None


def library_of(name: str) -> Library:
    if name == "private_caches":
        return LIBRARIES["cachetools"]
    found = find(name)
    assert found is not None, name
    return LIBRARIES[found[0].library]


def workload(name: str, n: int) -> tuple[Callable[[], Any], list[Callable[[Any], Any]], Callable[[Any], bool]]:
    if name == "private_caches":
        return private_caches(n)
    found = find(name)
    if found is None:
        raise SystemExit(f"unknown library workload {name}")
    race, safe = found
    if safe:
        return race.twin()
    return race.setup, list(race.threads), race.invariant


def prepare(name: str) -> None:
    """Import what the workload's library needs."""
    for module in library_of(name).imports:
        importlib.import_module(module)


def patterns(name: str) -> list[str]:
    """Module-name patterns of the library a workload calls."""
    return library_of(name).patterns()


def pins(requirements: str) -> list[str]:
    """``name==version`` for every library above, from a requirements file;
    a library pinned there without ``==`` is an error."""
    wanted = {lib.distribution.lower(): lib.distribution for lib in LIBRARIES.values()}
    found: dict[str, str] = {}
    with open(requirements) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            m = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*==\s*([A-Za-z0-9_.+-]+)", line)
            if m and m.group(1).lower() in wanted:
                found[m.group(1).lower()] = f"{m.group(1)}=={m.group(2)}"
    missing = sorted(set(wanted) - set(found))
    if missing:
        raise SystemExit(f"libraries.py: not pinned with == in {requirements}: {', '.join(missing)}")
    return [found[k] for k in sorted(found)]


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--pins":
        print("\n".join(pins(sys.argv[2])))
    else:
        raise SystemExit(__doc__)
