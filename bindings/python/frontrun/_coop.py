"""Cooperative locks, events, conditions, semaphores, barriers and queues.

A worker thread that blocks on a real lock while another worker holds the
turn would stall the exploration until ``deadlock_timeout``. The classes here
look and behave like their ``threading`` and ``queue`` namesakes, but from a
worker thread of a running exploration every synchronisation operation is a
step the scheduler chooses, and a thread that has to wait is parked by the
scheduler (never scheduled while it waits) until a release, ``set``,
``notify`` or ``put`` wakes it. The engine learns the acquire and release
edges (so the happens-before they create removes false races) and the waits
(so a state where every thread waits is reported as a deadlock, with the
lock-ordering cycle when there is one).

From any other thread (no exploration running, or a thread frontrun did not
start) each object behaves exactly like the real one: ``Lock`` and ``RLock``
wrap a real lock and delegate to it, and ``Condition`` delegates to a real
``threading.Condition``. Everything else is built on those two, so it runs
the same algorithm in both modes.

Timeouts are modelled: a timed wait in a worker times out only when every
unfinished thread is waiting (the wait with the lowest thread number expires
first). The program then sees the same result as a real timeout (``False``,
``queue.Empty``, ``BrokenBarrierError``...), without real time passing.

Objects created by the standard library's own code (``threading.Thread``'s
internal events, ``concurrent.futures``...) and by frontrun itself stay real:
threads that frontrun does not schedule signal them.

``install()`` puts the classes in place of the names in ``threading`` and
``queue`` (nested calls are counted) and wraps the real locks the program
made before (``frontrun._adopt``); ``uninstall()`` restores the originals
when the count drops to zero.
"""

from __future__ import annotations

import _thread
import os
import queue as _queue_mod
import sys
import threading as _threading_mod
import time
import types
from collections import deque
from collections.abc import Callable
from typing import Any

from frontrun import _adopt, _engine, _stats

__all__ = [
    "Barrier",
    "BoundedSemaphore",
    "BrokenBarrierError",
    "Condition",
    "Event",
    "LifoQueue",
    "Lock",
    "PriorityQueue",
    "Queue",
    "RLock",
    "Semaphore",
    "SimpleQueue",
    "install",
    "installed",
    "uninstall",
]

_THREADING_NAMES = ("Lock", "RLock", "Condition", "Semaphore", "BoundedSemaphore", "Event", "Barrier")
_QUEUE_NAMES = ("Queue", "LifoQueue", "PriorityQueue", "SimpleQueue")

# The originals, captured before anything is replaced.
_ORIGINAL: dict[tuple[Any, str], Any] = {}
for _name in _THREADING_NAMES:
    _ORIGINAL[(_threading_mod, _name)] = getattr(_threading_mod, _name)
for _name in _QUEUE_NAMES:
    _ORIGINAL[(_queue_mod, _name)] = getattr(_queue_mod, _name)

_RealCondition = _threading_mod.Condition
_RealRLock = _thread.RLock
_allocate_lock = _thread.allocate_lock
BrokenBarrierError = _threading_mod.BrokenBarrierError
_ShutDown = getattr(_queue_mod, "ShutDown", None)

_coop_tid = _engine.coop_tid
_coop_event = _engine.coop_event

# A worker whose execution was abandoned (deadlock, timeout) unwinds with
# ExecutionAborted raised inside a primitive, possibly before it took a lock
# back (Condition.wait). Its ``finally`` blocks then release locks it does
# not hold; for such a thread that is not an error.
_unwinding = _threading_mod.local()


def _coop_turn(code: types.CodeType | None, offset: int, *objs: object) -> None:
    try:
        _engine.coop_turn(code, offset, *objs)
    except _engine.ExecutionAborted:
        _unwinding.active = True
        raise


def _coop_block(obj: Any, *, lock: bool = False, timed: bool = False) -> bool:
    try:
        return _engine.coop_block(obj, lock, timed)
    except _engine.ExecutionAborted:
        _unwinding.active = True
        raise


def _release_real(real: Any) -> None:
    """Release a real lock from an ordinary thread (or an unwinding worker)."""
    try:
        real.release()
    except RuntimeError:
        # Only while unwinding: the same thread in a later execution is a
        # worker again, and its errors are the program's.
        if getattr(_unwinding, "active", False) and _coop_tid() is None:
            return
        raise


_THIS_FILE = __file__
_FRONTRUN_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_STDLIB_DIR = os.path.dirname(os.path.abspath(os.__file__)) + os.sep


_PACKAGES = "-packages" + os.sep


_FUTURES_DIR = os.path.join(_STDLIB_DIR, "concurrent", "futures") + os.sep

#: While an execution of threads runs (``_run._run_one``), the objects
#: ``concurrent.futures`` makes are cooperative: the threads of a
#: ThreadPoolExecutor made then are explored (``_spawn``). Not for a
#: submit to a pool that is not explored (``_futures_real``): its real
#: threads signal what is made there.
_futures_cooperative = False
_futures_real = _threading_mod.local()


def cooperative_futures(on: bool) -> None:
    global _futures_cooperative
    _futures_cooperative = on


def is_cooperative(queue: Any) -> bool:
    """Whether ``queue`` is a queue whose waits a worker makes cooperatively."""
    cond = getattr(queue, "_cond", None) if isinstance(queue, (SimpleQueue, Queue)) else None
    return isinstance(cond, Condition) and cond._coop


def real_futures(on: bool) -> None:
    """The calling thread makes real objects in ``concurrent.futures``."""
    _futures_real.active = on


def _internal_creator(depth: int) -> bool:
    """Whether the object being built is made by the standard library or by
    frontrun (not by ``_coop`` itself): such objects stay real."""
    try:
        frame: Any = sys._getframe(depth + 1)
    except ValueError:
        return False
    filename = frame.f_code.co_filename
    if filename == _THIS_FILE:
        return False
    if filename.startswith(_FRONTRUN_DIR):
        return True
    if _futures_cooperative and filename.startswith(_FUTURES_DIR):
        return bool(getattr(_futures_real, "active", False))
    # Installed packages may live below the standard library's directory;
    # their objects are cooperative like the program's own.
    return filename.startswith(_STDLIB_DIR) and _PACKAGES not in filename


def _caller() -> tuple[types.CodeType | None, int]:
    """The program's frame that called into a primitive (directly or through
    the standard library or an installed package), for the step record."""
    frame: Any = sys._getframe(2)
    # With no program frame (a thread-pool worker waiting for work): the
    # innermost frame outside frontrun.
    fallback: Any = None
    while frame is not None:
        filename = frame.f_code.co_filename
        if not (
            filename.startswith((_STDLIB_DIR, _FRONTRUN_DIR)) or _PACKAGES in filename or filename.startswith("<frozen")
        ):
            return frame.f_code, max(frame.f_lasti, 0)
        if fallback is None and not filename.startswith(_FRONTRUN_DIR):
            fallback = frame
        frame = frame.f_back
    if fallback is not None:
        return fallback.f_code, max(fallback.f_lasti, 0)
    return None, 0


def _check_timeout(blocking: bool, timeout: float) -> None:
    if not blocking and timeout != -1:
        raise ValueError("can't specify a timeout for a non-blocking call")
    if timeout < 0 and timeout != -1:
        raise ValueError("timeout value must be a non-negative number")


# ---------------------------------------------------------------------------
# Locks
# ---------------------------------------------------------------------------


class _LockBase:
    """Shared acquire logic of Lock and RLock: the real lock is the state."""

    __slots__ = ("__weakref__", "_frontrun_for", "_owner", "_real", "_real_only")

    _real: Any
    #: Worker id of the holder, when a worker holds it.
    _owner: int | None
    _real_only: bool
    _frontrun_for: Any

    def _coop_acquire(self, tid: int, blocking: bool, timeout: float) -> bool:
        code, offset = _caller()
        while True:
            _coop_turn(code, offset, self)
            if self._real.acquire(False):
                self._owner = tid
                self._acquired(tid)
                _coop_event("acquire" if blocking and timeout != 0 else "try_acquire", self)
                return True
            if self._owner is None:
                # Held by a thread frontrun does not schedule: only a real
                # wait can end this one (the turn stays with this thread).
                if not self._real.acquire(blocking, timeout):
                    return False
                self._owner = tid
                self._acquired(tid)
                _coop_event("acquire", self)
                return True
            if not blocking or timeout == 0:
                _coop_event("try_fail", self)
                return False
            if not _coop_block(self, lock=True, timed=timeout > 0):
                return False

    def _acquired(self, tid: int) -> None:
        pass

    def _coop_release(self) -> None:
        code, offset = _caller()
        try:
            _coop_turn(code, offset, self)
        except _engine.ExecutionAborted:
            self._owner = None
            self._real.release()
            raise
        self._owner = None
        self._real.release()
        _coop_event("release", self)

    def locked(self) -> bool:
        return self._real.locked()

    def __exit__(self, *exc: object) -> None:
        self.release()  # type: ignore[attr-defined]

    def _at_fork_reinit(self) -> None:
        self._real._at_fork_reinit()
        self._owner = None


class Lock(_LockBase):
    """``threading.Lock`` that a worker waits for cooperatively."""

    __slots__ = ()

    def __init__(self, *, _real_only: bool | None = None) -> None:
        self._real = _allocate_lock()
        self._owner = None
        self._real_only = _internal_creator(1) if _real_only is None else _real_only
        self._frontrun_for = None

    @classmethod
    def _wrapping(cls, real: Any) -> Lock:
        """A cooperative lock whose state is the existing real lock ``real``
        (see ``frontrun._adopt``)."""
        made = cls(_real_only=False)
        made._real = real
        return made

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        tid = None if self._real_only else _coop_tid()
        if tid is None:
            return self._real.acquire(blocking, timeout)
        _check_timeout(blocking, timeout)
        return self._coop_acquire(tid, blocking, timeout)

    acquire_lock = acquire

    def __enter__(self) -> bool:
        return self.acquire()

    def release(self) -> None:
        tid = None if self._real_only else _coop_tid()
        if tid is None or self._owner is None:
            self._owner = None
            _release_real(self._real)
            return
        if self._owner != tid:
            raise RuntimeError(
                f"frontrun: a cooperative Lock held by thread {self._owner} was released by thread {tid}; "
                "releasing a lock another explored thread holds is not supported (use a Semaphore)"
            )
        self._coop_release()

    release_lock = release

    def __repr__(self) -> str:
        state = "locked" if self._real.locked() else "unlocked"
        return f"<frontrun cooperative {state} Lock at {id(self):#x}>"


class RLock(_LockBase):
    """``threading.RLock`` that a worker waits for cooperatively. Only the
    outermost acquire and release are synchronisation steps."""

    __slots__ = ("_depth",)

    def __init__(self, *, _real_only: bool | None = None) -> None:
        self._real = _RealRLock()
        self._owner = None
        self._depth = 0
        self._real_only = _internal_creator(1) if _real_only is None else _real_only
        self._frontrun_for = None

    @classmethod
    def _wrapping(cls, real: Any) -> RLock:
        """A cooperative RLock whose state is the existing real RLock ``real``
        (see ``frontrun._adopt``)."""
        made = cls(_real_only=False)
        made._real = real
        return made

    def _acquired(self, tid: int) -> None:
        self._depth = 1

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        tid = None if self._real_only else _coop_tid()
        if tid is None:
            return self._real.acquire(blocking, timeout)
        _check_timeout(blocking, timeout)
        if self._owner == tid:
            self._real.acquire()
            self._depth += 1
            return True
        return self._coop_acquire(tid, blocking, timeout)

    def __enter__(self) -> bool:
        return self.acquire()

    def release(self) -> None:
        tid = None if self._real_only else _coop_tid()
        if tid is None or self._owner != tid:
            # Not ours: the real RLock raises as it should.
            _release_real(self._real)
            return
        if self._depth > 1:
            self._depth -= 1
            self._real.release()
            return
        self._depth = 0
        self._coop_release()

    def _recursion_count(self) -> int:
        """How many times the calling thread holds it (the real RLock's
        answer: it is the state; multiprocessing's resource tracker asks)."""
        return int(self._real._recursion_count())

    # For a real threading.Condition built on this lock (ordinary threads).
    def _is_owned(self) -> bool:
        return self._real._is_owned()

    def _release_save(self) -> Any:
        return self._real._release_save()

    def _acquire_restore(self, state: Any) -> None:
        self._real._acquire_restore(state)

    def __repr__(self) -> str:
        return f"<frontrun cooperative RLock at {id(self):#x} {self._real!r}>"


# ---------------------------------------------------------------------------
# Condition
# ---------------------------------------------------------------------------


class Condition:
    """``threading.Condition``; cooperative when its lock is a cooperative
    ``Lock`` or ``RLock``."""

    def __init__(self, lock: Any = None, *, _real_only: bool | None = None) -> None:
        real_only = _internal_creator(1) if _real_only is None else _real_only
        if lock is None:
            lock = RLock(_real_only=real_only)
        self._lock = lock
        self.acquire = lock.acquire
        self.release = lock.release
        self._real = _RealCondition(lock)
        self._coop = isinstance(lock, _LockBase) and not real_only and not lock._real_only
        #: Workers waiting: [tid, notified] pairs in arrival order.
        self._waiters: deque[list[Any]] = deque()
        self._frontrun_for: Any = None

    def __enter__(self) -> bool:
        return self._lock.__enter__()

    def __exit__(self, *exc: object) -> None:
        self._lock.__exit__(*exc)

    def __repr__(self) -> str:
        return f"<frontrun cooperative Condition({self._lock!r}, {len(self._waiters)})>"

    def _worker(self) -> int | None:
        return _coop_tid() if self._coop else None

    def wait(self, timeout: float | None = None) -> bool:
        tid = self._worker()
        if tid is None:
            return self._real.wait(timeout)
        lock = self._lock
        if lock._owner != tid:
            raise RuntimeError("cannot wait on un-acquired lock")
        depth = getattr(lock, "_depth", 1)
        code, offset = _caller()
        _coop_turn(code, offset, self, lock)
        # Release completely (an RLock may be held several times), in the
        # same step as the wait starts: no notify can fall in between.
        lock._owner = None
        if isinstance(lock, RLock):
            lock._depth = 0
            for _ in range(depth):
                lock._real.release()
        else:
            lock._real.release()
        _coop_event("release", lock)
        notified = False
        if timeout is None or timeout > 0:
            me = [tid, False]
            self._waiters.append(me)
            try:
                _coop_block(self, timed=timeout is not None)
            finally:
                notified = bool(me[1])
                if not notified:
                    self._waiters.remove(me)
        lock._coop_acquire(tid, True, -1)
        if isinstance(lock, RLock):
            for _ in range(depth - 1):
                lock._real.acquire()
            lock._depth = depth
        return notified

    def wait_for(self, predicate: Callable[[], Any], timeout: float | None = None) -> Any:
        result = predicate()
        if result:
            return result
        coop = self._worker() is not None
        deadline = None if timeout is None else time.monotonic() + timeout
        remaining = timeout
        while not result:
            if deadline is not None and not coop:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
            notified = self.wait(remaining)
            result = predicate()
            if coop and not notified and timeout is not None:
                # A modelled timeout: the wait used up its time.
                break
        return result

    def notify(self, n: int = 1) -> None:
        tid = self._worker()
        if tid is None:
            self._real.notify(n)
            return
        if self._lock._owner != tid:
            raise RuntimeError("cannot notify on un-acquired lock")
        if self._real._waiters:  # type: ignore[attr-defined]
            self._real.notify(n)
        if not self._waiters or n <= 0:
            return
        code, offset = _caller()
        _coop_turn(code, offset, self)
        while self._waiters and n > 0:
            waiter = self._waiters.popleft()
            waiter[1] = True
            _coop_event("unblock", self, waiter[0])
            n -= 1

    def notify_all(self) -> None:
        self.notify(max(len(self._waiters), len(self._real._waiters), 1))  # type: ignore[attr-defined]

    notifyAll = notify_all


# ---------------------------------------------------------------------------
# Built on Lock and Condition
# ---------------------------------------------------------------------------


def _new_condition(owner: Any, real_only: bool) -> Condition:
    lock = Lock(_real_only=real_only)
    cond = Condition(lock, _real_only=real_only)
    lock._frontrun_for = owner
    cond._frontrun_for = owner
    return cond


class Semaphore:
    """``threading.Semaphore``."""

    def __init__(self, value: int = 1) -> None:
        if value < 0:
            raise ValueError("semaphore initial value must be >= 0")
        self._cond = _new_condition(self, _internal_creator(1))
        self._value = value

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        if not blocking and timeout is not None:
            raise ValueError("can't specify timeout for non-blocking acquire")
        with self._cond:
            if not blocking:
                ok = self._value > 0
            else:
                ok = bool(self._cond.wait_for(lambda: self._value > 0, timeout))
            if ok:
                self._value -= 1
            return ok

    __enter__ = acquire

    def release(self, n: int = 1) -> None:
        if n < 1:
            raise ValueError("n must be one or more")
        with self._cond:
            self._check_release(n)
            self._value += n
            self._cond.notify(n)

    def _check_release(self, n: int) -> None:
        pass

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"<frontrun cooperative {type(self).__name__} at {id(self):#x}: value={self._value}>"


class BoundedSemaphore(Semaphore):
    """``threading.BoundedSemaphore``: releasing above the initial value raises."""

    def __init__(self, value: int = 1) -> None:
        super().__init__(value)
        self._initial_value = value

    def _check_release(self, n: int) -> None:
        if self._value + n > self._initial_value:
            raise ValueError("Semaphore released too many times")


class Event:
    """``threading.Event``."""

    def __init__(self) -> None:
        self._cond = _new_condition(self, _internal_creator(1))
        self._flag = False

    # is_set() takes no lock (as in threading): in a worker it is one step
    # that reads the flag, and set()/clear() write it in the step where
    # they change it, so polling threads' checks commute with each other.
    def is_set(self) -> bool:
        if self._cond._worker() is not None:
            code, offset = _caller()
            _coop_turn(code, offset, self)
            _coop_event("read", self)
        return self._flag

    isSet = is_set

    def _write_flag(self, value: bool) -> None:
        self._flag = value
        if self._cond._worker() is not None:
            _coop_event("write", self)

    def set(self) -> None:
        with self._cond:
            self._write_flag(True)
            self._cond.notify_all()

    def clear(self) -> None:
        with self._cond:
            self._write_flag(False)

    def wait(self, timeout: float | None = None) -> bool:
        with self._cond:
            return bool(self._cond.wait_for(lambda: self._flag, timeout))

    def _at_fork_reinit(self) -> None:
        self._cond = _new_condition(self, True)

    def __repr__(self) -> str:
        return f"<frontrun cooperative Event at {id(self):#x}: {'set' if self._flag else 'unset'}>"


class Barrier:
    """``threading.Barrier``. Each trip of the barrier is a generation;
    waiters of a generation leave when it trips or breaks."""

    def __init__(self, parties: int, action: Callable[[], Any] | None = None, timeout: float | None = None) -> None:
        if parties < 1:
            raise ValueError("parties must be >= 1")
        self._cond = _new_condition(self, _internal_creator(1))
        self._parties = parties
        self._action = action
        self._timeout = timeout
        self._count = 0
        self._generation = 0
        self._broken = False
        #: Generations ended by reset() while threads waited in them.
        self._reset_generations: set[int] = set()

    def wait(self, timeout: float | None = None) -> int:
        if timeout is None:
            timeout = self._timeout
        with self._cond:
            if self._broken:
                raise BrokenBarrierError
            generation = self._generation
            index = self._count
            self._count += 1
            if self._count == self._parties:
                if self._action is not None:
                    try:
                        self._action()
                    except BaseException:
                        self._break()
                        raise
                self._count = 0
                self._generation += 1
                self._cond.notify_all()
                return index
            passed = self._cond.wait_for(lambda: self._generation != generation or self._broken, timeout)
            if self._generation != generation and generation not in self._reset_generations:
                return index
            if not passed:
                self._break()
            raise BrokenBarrierError

    def _break(self) -> None:
        self._broken = True
        self._count = 0
        self._cond.notify_all()

    def reset(self) -> None:
        with self._cond:
            if self._count > 0 or self._broken:
                self._reset_generations.add(self._generation)
            self._generation += 1
            self._count = 0
            self._broken = False
            self._cond.notify_all()

    def abort(self) -> None:
        with self._cond:
            self._break()

    @property
    def parties(self) -> int:
        return self._parties

    @property
    def n_waiting(self) -> int:
        return 0 if self._broken else self._count

    @property
    def broken(self) -> bool:
        return self._broken

    def __repr__(self) -> str:
        return f"<frontrun cooperative Barrier at {id(self):#x}: waiters={self.n_waiting}/{self._parties}>"


# ---------------------------------------------------------------------------
# Queues
# ---------------------------------------------------------------------------


def _check_queue_timeout(timeout: float | None) -> None:
    if timeout is not None and timeout < 0:
        raise ValueError("'timeout' must be a non-negative number")


class Queue(_ORIGINAL[(_queue_mod, "Queue")]):  # type: ignore[misc, valid-type]
    """``queue.Queue`` whose lock and conditions are cooperative; ``put``
    and ``get`` wait through them (so their timeouts are modelled)."""

    def __init__(self, maxsize: int = 0) -> None:
        super().__init__(maxsize)
        real_only = _internal_creator(1)
        self.mutex = Lock(_real_only=real_only)
        self.mutex._frontrun_for = self
        self.not_empty = Condition(self.mutex, _real_only=real_only)
        self.not_full = Condition(self.mutex, _real_only=real_only)
        self.all_tasks_done = Condition(self.mutex, _real_only=real_only)
        for cond in (self.not_empty, self.not_full, self.all_tasks_done):
            cond._frontrun_for = self

    def _shut(self) -> bool:
        return bool(getattr(self, "is_shutdown", False))

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        with self.not_full:
            if self._shut():
                raise _ShutDown  # type: ignore[misc]
            if self.maxsize > 0:
                if not block:
                    if self._qsize() >= self.maxsize:
                        raise _queue_mod.Full
                else:
                    _check_queue_timeout(timeout)
                    room = self.not_full.wait_for(lambda: self._qsize() < self.maxsize or self._shut(), timeout)
                    if self._shut():
                        raise _ShutDown  # type: ignore[misc]
                    if not room:
                        raise _queue_mod.Full
            self._put(item)
            self.unfinished_tasks += 1
            self.not_empty.notify()

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        with self.not_empty:
            if self._shut() and not self._qsize():
                raise _ShutDown  # type: ignore[misc]
            if not block:
                if not self._qsize():
                    raise _queue_mod.Empty
            else:
                _check_queue_timeout(timeout)
                ready = self.not_empty.wait_for(lambda: self._qsize() or self._shut(), timeout)
                if not self._qsize():
                    if self._shut():
                        raise _ShutDown  # type: ignore[misc]
                    if not ready:
                        raise _queue_mod.Empty
            item = self._get()
            self.not_full.notify()
            return item


class LifoQueue(Queue, _ORIGINAL[(_queue_mod, "LifoQueue")]):  # type: ignore[misc, valid-type]
    """``queue.LifoQueue`` with cooperative waiting."""


class PriorityQueue(Queue, _ORIGINAL[(_queue_mod, "PriorityQueue")]):  # type: ignore[misc, valid-type]
    """``queue.PriorityQueue`` with cooperative waiting."""


class SimpleQueue:
    """``queue.SimpleQueue``: unbounded FIFO, ``put`` never blocks."""

    def __init__(self) -> None:
        self._items: deque[Any] = deque()
        self._cond = _new_condition(self, _internal_creator(1))

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        with self._cond:
            self._items.append(item)
            self._cond.notify()

    def put_nowait(self, item: Any) -> None:
        self.put(item, False)

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        with self._cond:
            if block:
                _check_queue_timeout(timeout)
                self._cond.wait_for(lambda: self._items, timeout)
            if not self._items:
                raise _queue_mod.Empty
            return self._items.popleft()

    def get_nowait(self) -> Any:
        return self.get(False)

    def empty(self) -> bool:
        with self._cond:
            return not self._items

    def qsize(self) -> int:
        with self._cond:
            return len(self._items)

    __class_getitem__: Any = classmethod(types.GenericAlias)


# ---------------------------------------------------------------------------
# Installation
# ---------------------------------------------------------------------------

_REPLACEMENTS: dict[tuple[Any, str], Any] = {
    (_threading_mod, "Lock"): Lock,
    (_threading_mod, "RLock"): RLock,
    (_threading_mod, "Condition"): Condition,
    (_threading_mod, "Semaphore"): Semaphore,
    (_threading_mod, "BoundedSemaphore"): BoundedSemaphore,
    (_threading_mod, "Event"): Event,
    (_threading_mod, "Barrier"): Barrier,
    (_queue_mod, "Queue"): Queue,
    (_queue_mod, "LifoQueue"): LifoQueue,
    (_queue_mod, "PriorityQueue"): PriorityQueue,
    (_queue_mod, "SimpleQueue"): SimpleQueue,
}

_install_lock = _allocate_lock()
_install_count = 0


def install() -> None:
    """Replace the primitives in ``threading`` and ``queue`` with the
    cooperative ones. Calls nest: each needs a matching ``uninstall()``."""
    global _install_count
    with _install_lock:
        if _install_count == 0:
            for (module, name), cls in _REPLACEMENTS.items():
                setattr(module, name, cls)
            if _stats.DEFAULTS.adopt_locks:
                _adopt.adopt(sys.modules[__name__])
        _install_count += 1


def uninstall() -> None:
    """Undo one ``install()``; the originals return when none is left."""
    global _install_count
    with _install_lock:
        if _install_count == 0:
            return
        _install_count -= 1
        if _install_count == 0:
            for (module, name), original in _ORIGINAL.items():
                setattr(module, name, original)
            _adopt.restore()


def installed() -> bool:
    """Whether the cooperative primitives are in place."""
    return _install_count > 0


def original(module: Any, name: str) -> Any:
    """The real ``module.name`` (``original(threading, "Lock")``)."""
    return _ORIGINAL[(module, name)]
