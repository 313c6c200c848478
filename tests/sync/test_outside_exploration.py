"""Outside an exploration (or in a thread frontrun does not schedule) the
cooperative classes behave like the real ones, and install()/uninstall()
swap the names in threading and queue."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator

import pytest
from _sync_helpers import explore_all
from frontrun import _coop


@pytest.fixture
def installed() -> Iterator[None]:
    _coop.install()
    try:
        yield
    finally:
        _coop.uninstall()


def test_install_replaces_the_names_and_nested_calls_are_counted() -> None:
    # (The pytest plugin may have installed them already: count from there.)
    before = _coop.installed()
    _coop.install()
    _coop.install()
    assert threading.Lock is _coop.Lock and queue.SimpleQueue is _coop.SimpleQueue
    _coop.uninstall()
    assert _coop.installed() and threading.Event is _coop.Event
    _coop.uninstall()
    assert _coop.installed() == before
    if not before:
        assert threading.Lock is _coop.original(threading, "Lock")
        assert queue.Queue is _coop.original(queue, "Queue")
        _coop.uninstall()  # one too many does nothing
        assert threading.Lock is _coop.original(threading, "Lock")
        assert not _coop.installed()


def test_exploration_installs_only_while_it_runs() -> None:
    before = _coop.installed()
    seen: list[bool] = []

    def thread(_: object) -> None:
        seen.append(threading.Lock is _coop.Lock)

    explore_all(object, [thread])
    assert seen and all(seen)
    assert _coop.installed() == before


def test_lock_excludes_ordinary_threads(installed: None) -> None:
    lock = threading.Lock()
    assert isinstance(lock, _coop.Lock)
    counter = [0]

    def work() -> None:
        for _ in range(2000):
            with lock:
                v = counter[0]
                counter[0] = v + 1

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counter[0] == 8000
    assert lock.acquire(timeout=0.01)
    assert not lock.acquire(timeout=0.01)
    assert not lock.acquire(blocking=False)
    lock.release()
    with pytest.raises(RuntimeError):
        lock.release()
    with pytest.raises(ValueError):
        lock.acquire(blocking=False, timeout=1)


def test_rlock_condition_and_event_between_ordinary_threads(installed: None) -> None:
    rlock = threading.RLock()
    with rlock, rlock:
        assert rlock._is_owned()
    with pytest.raises(RuntimeError):
        rlock.release()

    cond = threading.Condition()
    items: list[int] = []

    def producer() -> None:
        for i in range(100):
            with cond:
                items.append(i)
                cond.notify()

    got: list[int] = []

    def consumer() -> None:
        while len(got) < 100:
            with cond:
                cond.wait_for(lambda: items)
                got.extend(items)
                items.clear()

    threads = [threading.Thread(target=consumer), threading.Thread(target=producer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert got == list(range(100))

    ev = threading.Event()
    start = time.monotonic()
    assert ev.wait(0.05) is False
    assert time.monotonic() - start >= 0.04
    threading.Timer(0.01, ev.set).start()
    assert ev.wait(5) is True and ev.is_set()


def test_queues_semaphore_and_barrier_between_ordinary_threads(installed: None) -> None:
    q: queue.Queue[int] = queue.Queue(maxsize=2)
    lifo: queue.LifoQueue[int] = queue.LifoQueue()
    prio: queue.PriorityQueue[int] = queue.PriorityQueue()
    simple: queue.SimpleQueue[int] = queue.SimpleQueue()
    for x in (3, 1, 2):
        lifo.put(x)
        prio.put(x)
        simple.put(x)
    assert [lifo.get() for _ in range(3)] == [2, 1, 3]
    assert [prio.get() for _ in range(3)] == [1, 2, 3]
    assert [simple.get() for _ in range(3)] == [3, 1, 2]
    with pytest.raises(queue.Empty):
        simple.get(timeout=0.01)
    q.put(1)
    q.put(2)
    with pytest.raises(queue.Full):
        q.put(3, timeout=0.01)

    def drain() -> None:
        for _ in range(5):
            q.get()
            q.task_done()

    t = threading.Thread(target=drain)
    t.start()
    for i in range(3):
        q.put(i)
    q.join()
    t.join()
    with pytest.raises(queue.Empty):
        q.get(timeout=0.01)

    sem = threading.BoundedSemaphore(1)
    assert sem.acquire()
    assert not sem.acquire(timeout=0.01)
    sem.release()
    with pytest.raises(ValueError):
        sem.release()

    barrier = threading.Barrier(3)
    indices: list[int] = []
    ts = [threading.Thread(target=lambda: indices.append(barrier.wait())) for _ in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(5)
    assert sorted(indices) == [0, 1, 2]
    with pytest.raises(threading.BrokenBarrierError):
        threading.Barrier(2).wait(timeout=0.01)


def test_objects_made_by_the_standard_library_stay_real(installed: None) -> None:
    t = threading.Thread(target=lambda: None)
    assert not t._started._cond._coop  # type: ignore[attr-defined]
    t.start()
    t.join()
    assert not threading.Lock()._real_only


MODULE_LOCK: object = None


def test_a_lock_made_at_import_time_while_installed_is_cooperative(installed: None) -> None:
    global MODULE_LOCK
    MODULE_LOCK = threading.Lock()

    class State:
        def __init__(self) -> None:
            self.value = 0

    def increment(s: State) -> None:
        with MODULE_LOCK:  # type: ignore[attr-defined]
            v = s.value
            s.value = v + 1

    result = explore_all(State, [increment, increment], lambda s: s.value == 2)
    assert result.inconclusive == []
    result.assert_holds()
    assert result.num_explored == 2


def test_a_worker_waits_for_real_for_a_lock_an_ordinary_thread_holds(installed: None) -> None:
    shared_lock = threading.Lock()
    holding = threading.Event()
    release_now = threading.Event()

    def outsider() -> None:
        with shared_lock:
            holding.set()
            release_now.wait(5)

    outside = threading.Thread(target=outsider)
    outside.start()
    assert holding.wait(5)

    class State:
        def __init__(self) -> None:
            self.value = 0

    def increment(s: State) -> None:
        release_now.set()  # (an ordinary-thread event: not cooperative)
        with shared_lock:
            s.value += 1

    # The worker waits for real until the ordinary thread lets go, then
    # holds the lock as a cooperative one (its release is a normal step).
    result = explore_all(State, [increment], lambda s: s.value == 1)
    outside.join(5)
    assert result.inconclusive == []
    result.assert_holds()
    assert not shared_lock.locked()
