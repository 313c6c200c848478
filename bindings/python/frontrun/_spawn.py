"""Threads that the workers start: explored like the workers themselves.

While an exploration runs, the functions that start threads
(``threading.Thread.start`` underneath, ``_thread.start_new_thread``) are
wrapped. A worker that starts a thread gives it one of the session's spare
thread ids: the explorer spawns it in the worker's step (what the worker
did before happens before the thread's steps), the thread works as a
worker of its own (traced, scheduled, its native events its own), and
``Thread.join`` from a worker waits for it through the explorer (its steps
happen before what follows the join; a join that never returns is a
deadlock, reported as such). A thread nobody joins is explored to its end
as well, and the result's notes name it.

The spare ids cost every step of every execution a little, so a session has
none until a worker first starts a thread: that execution is given up
(``Launches.wanted``) and the search starts again with ``SLOTS`` spare ids
(``dpor._search``). An execution that starts more threads than that is
inconclusive, naming the place.

A ``ThreadPoolExecutor`` made while the execution runs (in ``setup()`` or
by a worker) has cooperative queues and locks (``_coop.cooperative_futures``)
and threads started by the execution's threads, so it is explored; each
``submit`` is one step, and its idle workers left waiting at the end are
noted, not a deadlock (``Launches.left_waiting``). Work handed to any other
pool runs on threads frontrun does not schedule: the execution is reported
as not checked, naming the place (docs/limits.md).

Processes are not explored but followed: a worker that starts one
(``os.fork``, ``_posixsubprocess.fork_exec``, ``os.posix_spawn``) tells the
session its pid, keeps the turn until it reaps it (``os.waitpid``), and
under the preload library what the process and its descendants do joins
that stretch of the worker (``native.rs``, ``Native::register_child``).
"""

from __future__ import annotations

import _thread
import os
import re
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

from frontrun import _engine, _vclock

#: Spare thread ids of a session whose workers start threads.
SLOTS = 8

_local = _thread._local()
_install_lock = _thread.allocate_lock()
_install_count = 0
_saved: list[tuple[Any, str, Any]] = []

_SKIP = ("threading", "concurrent.futures", "frontrun", "_thread", "asyncio", "subprocess", "multiprocessing", "os")


def spare_for(recorded: int | None, numbered: int) -> int | None:
    """The spare thread ids a replay of a schedule recorded with
    ``recorded`` threads needs, for a call that numbers ``numbered``: 0,
    ``SLOTS`` (its workers started threads), or None (not of this call). A
    list (``recorded`` None) names no more threads than the call numbers."""
    if recorded is None or recorded == numbered:
        return 0
    return SLOTS if recorded == numbered + SLOTS else None


def _where() -> str:
    frame: FrameType | None = sys._getframe(2)
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if not any(name == p or name.startswith(p + ".") for p in _SKIP):
            return f"{frame.f_code.co_filename.rpartition('/')[2]}:{frame.f_lineno} in {frame.f_code.co_name}"
        frame = frame.f_back
    return "an unknown place"


def _name_of(thread: threading.Thread) -> str:
    """A started thread's name for explanations: the one it was given, else
    what it runs (the default names count every thread the process made,
    so they differ between executions)."""
    target = getattr(thread, "_target", None)
    if _pool_worker(thread):
        # Named with a count of the process's pools: "<prefix>_<index>".
        return f"worker {thread.name.rpartition('_')[2]} of a ThreadPoolExecutor"
    if not re.fullmatch(r"Thread-\d+(?: \(.*\))?", thread.name):
        return thread.name
    if target is not None:
        return getattr(target, "__qualname__", repr(target))
    return f"{type(thread).__qualname__}.run"


def _pool_worker(thread: threading.Thread) -> bool:
    target = getattr(thread, "_target", None)
    return getattr(target, "__module__", None) == "concurrent.futures.thread"


def _idle_at_exit(thread: threading.Thread) -> bool:
    """A thread whose wait at the program's end is not a hang: a daemon, or
    a ThreadPoolExecutor worker (woken at interpreter exit)."""
    return thread.daemon or _pool_worker(thread)


@dataclass
class Started:
    """A thread a worker started in this execution."""

    tid: int
    parent: int
    where: str
    name: str
    #: Its ``threading.Thread``, None for ``_thread.start_new_thread``.
    thread: threading.Thread | None
    joined: bool = False
    #: A ThreadPoolExecutor's worker, or a daemon thread: its wait at the
    #: program's end is not a hang (read at the start: a thread forgets
    #: its target when it ends).
    idle_at_exit: bool = False
    pool_worker: bool = False


class Launches:
    """The threads the workers of one execution start: which spare ids are
    left, and what became of each."""

    def __init__(
        self,
        session: Any,
        first: int,
        slots: int,
        errors: dict[int, BaseException],
        clock: Any,
    ) -> None:
        self.session = session
        self.first = first
        self.end = first + slots
        self.errors = errors
        self.clock = clock
        self.started: list[Started] = []
        #: Where a thread was started with no spare id left (the execution
        #: is then not checked).
        self.wanted: str | None = None
        #: Work handed to a thread pool, which is not explored.
        self.submitted: str | None = None
        #: Processes the execution's threads started and have not reaped:
        #: pid -> (command, where).
        self.unreaped: dict[int, tuple[str, str]] = {}

    def child_of(self, thread: threading.Thread) -> Started | None:
        for s in self.started:
            if s.thread is thread:
                return s
        return None

    def explores(self, pool: Any) -> bool:
        """Whether the work handed to the ThreadPoolExecutor ``pool`` is
        explored: the pool was made during the execution (its queue is
        cooperative) and its threads, if any, were started by the
        execution's threads."""
        from frontrun import _coop

        threads = getattr(pool, "_threads", None)
        return (
            _coop.is_cooperative(getattr(pool, "_work_queue", None))
            and isinstance(threads, set)
            and all(self.child_of(t) is not None for t in threads)
        )

    def left_waiting(self, deadlock: Any) -> str | None:
        """When no thread could run at the end only because threads the
        workers started wait for work that will not come (idle workers of a
        thread pool, daemon threads) while every worker has ended: what to
        note instead of a deadlock. None when it is a deadlock."""
        blocked = {b.thread for b in deadlock.blocked}
        if not blocked or any(t < self.first for t in blocked):
            return None
        waiting = [s for s in self.started if s.tid in blocked]
        if len(waiting) != len(blocked) or not all(s.idle_at_exit for s in waiting):
            return None
        names = ", ".join(f"thread {s.tid} ({s.name})" for s in waiting)
        were, they = ("was", "it") if len(waiting) == 1 else ("were", "they")
        return (
            f"{names} {were} still waiting when every other thread had ended (an idle thread-pool worker, or a "
            f"daemon thread); what {they} would do after that was not explored"
        )

    def notes(self) -> list[str]:
        unreaped = [
            f"a process ({command}) started at {where} was not waited for by its worker: what it did after "
            "the worker ended was not seen"
            for command, where in self.unreaped.values()
        ]
        return unreaped + [
            f"thread {s.tid} ({s.name}), started by thread {s.parent} at {s.where}, was never joined; "
            "it was explored to its end"
            for s in self.started
            # (A pool's idle workers are the pool's to end: see left_waiting.)
            if s.thread is not None and not s.joined and not s.pool_worker
        ]

    def start(self, real: Callable[..., Any], parent: int, function: Any, args: tuple, kwargs: dict) -> Any:
        owner = getattr(function, "__self__", None)
        thread = owner if isinstance(owner, threading.Thread) else None
        where = _where()
        child = self.first + len(self.started)
        if child >= self.end:
            # No id to give it: the execution is given up here, and the
            # thread is not started (run free, it would do what no schedule
            # controls, possibly during the next execution).
            self.wanted = where
            self.session.abort(f"a worker started a thread at {where}")
            if thread is not None:
                with threading._active_limbo_lock:  # type: ignore[attr-defined]
                    threading._limbo.pop(thread, None)  # type: ignore[attr-defined]
            raise _engine.ExecutionAborted(f"a worker started a thread at {where}")
        generation = self.session.spawn(child)
        if generation is None:
            # The execution was given up: everything runs free now.
            return real(function, *args, **kwargs)
        name = _name_of(thread) if thread is not None else getattr(function, "__qualname__", repr(function))
        self.started.append(
            Started(
                child,
                parent,
                where,
                name,
                thread,
                idle_at_exit=thread is not None and _idle_at_exit(thread),
                pool_worker=thread is not None and _pool_worker(thread),
            )
        )
        if thread is not None:
            # The thread's own start-up (which Thread.start waits for) runs
            # before it enters the execution; its run() is explored.
            body = thread.run
            thread.run = lambda: self._run(child, generation, body)  # type: ignore[method-assign]
            return real(function, *args, **kwargs)
        call_args = args[0] if args else ()
        call_kwargs = (args[1] if len(args) > 1 else kwargs.get("kwargs")) or {}
        return real(lambda: self._run(child, generation, lambda: function(*call_args, **call_kwargs)), ())

    def _run(self, tid: int, generation: int, body: Callable[[], Any]) -> None:
        _vclock.enter(self.clock)
        _local.launches = self
        try:
            try:
                self.session.enter_spawned(tid, generation)
            except _engine.ExecutionAborted:
                pass  # the execution is over: the thread runs free
            body()
        except _engine.ExecutionAborted:
            pass
        except BaseException as exc:
            self.errors[tid] = exc
        finally:
            _local.launches = None
            _vclock.leave()
            from frontrun import _workers

            if not _workers.is_forked_thread():
                self.session.leave(tid)


def enter(launches: Launches | None) -> None:
    """The calling worker's thread starts go to ``launches``."""
    _local.launches = launches


def leave() -> None:
    _local.launches = None


def _wrap_start(real: Any) -> Any:
    def start(function: Any, *args: Any, **kwargs: Any) -> Any:
        launches = getattr(_local, "launches", None)
        if launches is None or getattr(_local, "submitting", False):
            return real(function, *args, **kwargs)
        parent = _engine.coop_tid()
        if parent is None:
            return real(function, *args, **kwargs)
        return launches.start(real, parent, function, args, kwargs)

    start.__wrapped__ = real  # type: ignore[attr-defined]
    return start


def _wrap_submit(real: Any) -> Any:
    def submit(pool: Any, *args: Any, **kwargs: Any) -> Any:
        launches = getattr(_local, "launches", None)
        if launches is None or _engine.coop_tid() is None:
            return real(pool, *args, **kwargs)
        # One step: the submit holds the pool's locks, and the real
        # ``_global_shutdown_lock`` of the module, across its operations
        # on the pool's queue and semaphore; another worker switched to
        # there would wait for one of them in C.
        _engine.io_hold(True)
        try:
            if launches.explores(pool):
                return real(pool, *args, **kwargs)
            if launches.submitted is None:
                launches.submitted = f"ThreadPoolExecutor.submit at {_where()}"
            from frontrun import _coop

            _local.submitting = True
            _coop.real_futures(True)
            try:
                return real(pool, *args, **kwargs)
            finally:
                _local.submitting = False
                _coop.real_futures(False)
        finally:
            _engine.io_hold(False)

    submit.__wrapped__ = real  # type: ignore[attr-defined]
    return submit


def _wrap_join(real: Any) -> Any:
    def join(self: threading.Thread, timeout: float | None = None) -> None:
        launches = getattr(_local, "launches", None)
        started = launches.child_of(self) if launches is not None else None
        if started is None or _engine.coop_tid() is None:
            return real(self, timeout)
        if self is threading.current_thread():
            raise RuntimeError("cannot join current thread")
        from frontrun import _coop

        code, offset = _coop._caller()
        _coop._coop_turn(code, offset, self)
        if _engine.thread_join(started.tid, self, timeout is not None):
            started.joined = True
            # It left the execution; its OS thread is ending.
            return real(self, None)
        return None

    join.__wrapped__ = real  # type: ignore[attr-defined]
    return join


def _command(argv: Any) -> str:
    """The last component of ``argv[0]``."""
    try:
        first = os.fsdecode(argv[0])
    except (IndexError, TypeError, ValueError, KeyError):
        return "?"
    return first.rpartition("/")[2]


def _wrap_process(real: Any, argv_at: int | None) -> Any:
    """A function that starts a process and returns its pid: a worker that
    calls it tells the session, so that the process's native events (and
    its descendants') are the worker's (argv at ``argv_at`` names it)."""

    def start(*args: Any, **kwargs: Any) -> Any:
        pid = real(*args, **kwargs)
        if isinstance(pid, int) and pid > 0 and _engine.coop_tid() is not None:
            command = "forked" if argv_at is None else _command(args[argv_at])
            _engine.child_process(pid, command)
            launches = getattr(_local, "launches", None)
            if launches is not None:
                launches.unreaped[pid] = (command, _where())
        return pid

    start.__wrapped__ = real  # type: ignore[attr-defined]
    return start


def _wrap_wait(real: Any) -> Any:
    """``os.waitpid``/``os.wait``: a worker that reaps a child it started
    has what the child did join its step (the step of the wait)."""

    def wait(*args: Any, **kwargs: Any) -> Any:
        reaped = real(*args, **kwargs)
        if reaped[0] > 0 and _engine.coop_tid() is not None:
            _engine.child_reaped(reaped[0])
            launches = getattr(_local, "launches", None)
            if launches is not None:
                launches.unreaped.pop(reaped[0], None)
        return reaped

    wait.__wrapped__ = real  # type: ignore[attr-defined]
    return wait


def _plan() -> list[tuple[Any, str, Callable[[Any], Any]]]:
    import _posixsubprocess
    from concurrent.futures import thread as _futures_thread

    plan: list[tuple[Any, str, Callable[[Any], Any]]] = [
        (_thread, "start_new_thread", _wrap_start),
        (os, "fork", lambda real: _wrap_process(real, None)),
        (os, "waitpid", _wrap_wait),
        (os, "wait", _wrap_wait),
        (_posixsubprocess, "fork_exec", lambda real: _wrap_process(real, 0)),
    ]
    subprocess = sys.modules.get("subprocess")
    if subprocess is not None and hasattr(subprocess, "_fork_exec"):
        # (Bound at its import.)
        plan.append((subprocess, "_fork_exec", lambda real: _wrap_process(real, 0)))
    for name in ("posix_spawn", "posix_spawnp"):
        if hasattr(os, name):
            plan.append((os, name, lambda real: _wrap_process(real, 1)))
    for name in ("_start_new_thread", "_start_joinable_thread"):
        if hasattr(threading, name):
            plan.append((threading, name, _wrap_start))
    plan.append((threading.Thread, "join", _wrap_join))
    plan.append((_futures_thread.ThreadPoolExecutor, "submit", _wrap_submit))
    return plan


def _not_an_abort(record: Any) -> bool:
    """Drops the log record of a thread-pool worker unwinding from an
    execution that ended while it waited for work (the pool logs every
    exception that ends a worker)."""
    exc = record.exc_info[1] if record.exc_info else None
    return not isinstance(exc, _engine.ExecutionAborted)


def install() -> None:
    """Wrap the functions that start and join threads. Calls nest."""
    global _install_count
    with _install_lock:
        if _install_count == 0:
            import logging

            logging.getLogger("concurrent.futures").addFilter(_not_an_abort)
            for owner, name, wrap in _plan():
                real = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
                _saved.append((owner, name, real))
                setattr(owner, name, wrap(real))
        _install_count += 1


def uninstall() -> None:
    """Undo one ``install()``; the real functions return when none is left."""
    global _install_count
    with _install_lock:
        if _install_count == 0:
            return
        _install_count -= 1
        if _install_count == 0:
            for owner, name, real in reversed(_saved):
                setattr(owner, name, real)
            _saved.clear()
            import logging

            logging.getLogger("concurrent.futures").removeFilter(_not_an_abort)
