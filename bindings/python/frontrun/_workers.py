"""The threads the run machinery runs things on: a pool of worker threads
reused across executions, and the thread that runs ``setup()`` and the
invariant under a time bound (``_Offload``); how a thread left running in
an overrun call is interrupted; which thread is the one a worker forked.
"""

from __future__ import annotations

import contextvars
import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from frontrun import _coop, _engine

#: In the child of a fork: the thread that forked (the child's first
#: thread), else None.
_forked_thread: int | None = None


def is_forked_thread() -> bool:
    return _forked_thread is not None and threading.get_ident() == _forked_thread


def mark_forked_thread() -> None:
    """In the child of a fork: the calling thread is the one that forked."""
    global _forked_thread
    _forked_thread = threading.get_ident()


class _PooledThread:
    """A worker thread reused across executions: starting threads costs more
    than a short execution, and an exploration runs thousands of them."""

    def __init__(self, index: int) -> None:
        # (The real class even while the cooperative ones are installed.)
        self.jobs: queue.SimpleQueue[tuple[Any, ...] | None] = _coop.original(queue, "SimpleQueue")()
        # Each counter is written by one thread only (main / this worker).
        self.submitted = 0
        self.completed = 0
        self.thread = threading.Thread(target=self._loop, name=f"frontrun-worker-{index}", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while True:
            try:
                job = self.jobs.get()
                if job is None:
                    return
                try:
                    job[0](*job[1:])
                finally:
                    self.completed += 1
                if is_forked_thread():
                    return
            except _engine.ExecutionAborted:
                # An interrupt aimed at an abandoned execution arrived late.
                continue

    @property
    def busy(self) -> bool:
        return self.submitted != self.completed

    def submit(self, target: Callable[..., Any], *args: Any) -> None:
        """Run ``target(*args)`` on this thread."""
        self.submitted += 1
        self.jobs.put((target, *args))

    def stop(self) -> None:
        self.jobs.put(None)


class Stuck(Exception):
    """``setup()`` or the invariant did not return within its bound; the
    exploration ends inconclusive with the reason."""


class _Overdue(BaseException):
    """Raised into the thread of an overrun call, so that Python code there
    unwinds (a BaseException, so the user's ``except Exception`` does not
    swallow it); a call blocked inside C gets it when the C call returns."""


class _Call:
    """One call handed to the ``_Offload`` thread, and its outcome."""

    __slots__ = ("context", "done", "error", "fn", "value")

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn
        # The caller's context variables, as if the call ran on its thread.
        self.context = contextvars.copy_context()
        self.done = _coop.original(threading, "Lock")()
        self.done.acquire()
        self.value: Any = None
        self.error: BaseException | None = None


class _Offload:
    """Runs what the explorer bounds between executions (``setup()``, the
    invariant) on a thread of its own, and waits for it with a timeout: a
    call blocked inside C (a connect to a server that never answers, a
    native wait) is bounded as surely as Python code. On overrun the call's
    thread is noted where it is and left to end by itself (the result says
    so, and the next call gets a new thread); the exploration ends
    inconclusive.

    One thread per exploration, joined by ``stop``; a call costs two
    thread hand-offs.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[_Call | None] | None = None
        self._thread: threading.Thread | None = None
        #: Threads left running in an overrun call.
        self.abandoned: list[threading.Thread] = []

    def _start(self) -> None:
        jobs: queue.SimpleQueue[_Call | None] = _coop.original(queue, "SimpleQueue")()
        self._jobs = jobs
        self._thread = threading.Thread(target=self._loop, args=(jobs,), name="frontrun-setup", daemon=True)
        self._thread.start()

    @staticmethod
    def _loop(jobs: queue.SimpleQueue[_Call | None]) -> None:
        try:
            while True:
                call = jobs.get()
                if call is None:
                    return
                try:
                    call.value = call.context.run(call.fn)
                except BaseException as exc:
                    call.error = exc
                finally:
                    call.done.release()
                del call
        except _Overdue:
            pass  # the interrupt of an overrun call that ended just before it

    def call(self, what: str, seconds: float, fn: Callable[[], Any]) -> Any:
        """``fn()``'s value, or its exception, raised here; ``Stuck`` when
        it has not returned within ``seconds``."""
        __tracebackhide__ = True
        if self._thread is None or self._jobs is None:
            self._start()
        assert self._jobs is not None and self._thread is not None
        job = _Call(fn)
        self._jobs.put(job)
        try:
            finished = job.done.acquire(timeout=max(seconds, 0.001))
        except BaseException:
            # Ctrl-C while waiting: the call is left to end by itself.
            self._abandon()
            raise
        if not finished:
            frame = sys._current_frames().get(self._thread.ident or 0)
            where = _frame_site(frame)
            self._abandon()
            raise Stuck(f"{what} did not return within {seconds:.1f}s; it was at {where}")
        if job.error is not None:
            error, job.error = job.error, None
            raise error
        return job.value

    def _abandon(self) -> None:
        if self._jobs is not None and self._thread is not None:
            # Python code unwinds at once; a C call when it returns. Either
            # way the thread then finds the end of its queue. (This thread
            # is not traced: an asynchronous exception is safe on every
            # version.)
            self._jobs.put(None)
            ident = self._thread.ident
            if ident is not None:
                _async_raise(ident, _Overdue)
            self.abandoned.append(self._thread)
        self._jobs = self._thread = None

    def stop(self) -> None:
        if self._jobs is not None and self._thread is not None:
            self._jobs.put(None)
            self._thread.join()
        self._jobs = self._thread = None


def _frame_site(frame: Any) -> str:
    """The innermost frame outside frontrun, as ``file:line in function``."""
    here = os.path.dirname(__file__)
    while frame is not None and os.path.dirname(frame.f_code.co_filename) == here:
        frame = frame.f_back
    if frame is None:
        return "an unknown place"
    return f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}"


class WorkerPool:
    """The worker threads of one call, and the thread that runs ``setup()``
    and the invariant (``offload``)."""

    def __init__(self, size: int) -> None:
        self.threads = [_PooledThread(i) for i in range(size)]
        self.offload = _Offload()
        #: Threads taken out of the pool while still busy with an abandoned
        #: execution, until they end.
        self.retired: list[threading.Thread] = []

    def replace_stuck(self) -> list[str]:
        """Abandon threads still busy with an abandoned execution."""
        stuck = []
        for i, t in enumerate(self.threads):
            if t.busy:
                stuck.append(t.thread.name)
                t.stop()
                self.retired.append(t.thread)
                self.threads[i] = _PooledThread(i)
        return stuck

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while any(t.busy for t in self.threads):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.0005)
        return True

    def close(self) -> None:
        """Stop and join the idle threads. A thread retired while busy with
        an abandoned execution ends by itself (the result said so)."""
        for t in self.threads:
            t.stop()
        for t in self.threads:
            t.thread.join()
        self.offload.stop()


# One pool per call (an exploration and its replays), stopped when it
# returns: no thread frontrun started outlives the call, so a test suite's
# thread-leak check holds. Keeping idle pools between explorations saved
# about 0.3 ms per exploration (2 threads), measured; not worth threads
# left running.
def release_pool(pool: WorkerPool) -> None:
    # Workers of a finished execution are only returning to their loop.
    if not pool.wait_idle(0.5):
        pool.replace_stuck()
    pool.close()


# An asynchronous exception that lands in a thread blocked in C makes 3.11's
# tracing loop in the next execution; there a thread stuck in untraced code
# is left to end by itself (and reported), never interrupted.
ASYNC_INTERRUPT_IS_SAFE = sys.version_info[:2] != (3, 11)


def _async_raise(ident: int, exc: type[BaseException]) -> None:
    """Raise ``exc`` in the thread ``ident`` at its next check."""
    import ctypes  # only when something overran

    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(exc))


def interrupt(thread: threading.Thread) -> None:
    """Best effort: raise ExecutionAborted in a thread stuck in Python code."""
    if thread.ident is not None and thread.is_alive():
        _async_raise(thread.ident, _engine.ExecutionAborted)
