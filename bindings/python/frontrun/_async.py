"""asyncio tasks under the DPOR engine: the event loop ``explore_async`` runs.

Each coroutine function given to ``explore_async`` becomes a task, and each
task is one thread of the engine. The tasks run on one event loop, on one
OS thread, one step at a time: a step is what a task runs from the moment
the loop resumes it to the moment it yields back (an ``await`` of a future
that is not done, ``asyncio.sleep(0)``, a wait on a lock, event, condition
or queue). Between two awaits the loop cannot preempt a task, and neither
does the exploration: the accesses a task makes in between all join its
step (``session/tasks.rs``), with the same keys as the threaded explorer's.

The loop (``_TaskLoop``) keeps one queue of ready callbacks per task: a
callback that resumes a task (its ``__step`` or ``__wakeup``) goes to that
task's queue; any other callback (a future's done-callback, ``gather``'s
bookkeeping) runs at the end of the step that scheduled it, which is what
made it ready. At each switch the loop asks the engine which task with a
ready callback takes the next step. A task left with nothing ready is
blocked on what it awaits, and the step that readies it again wakes it,
which orders the two steps for the engine.

The futures the loop makes, and the tasks, are asyncio's pure-Python ones,
and ``asyncio.futures``, ``asyncio.locks`` and ``asyncio.queues`` are
traced: waiting on a future, a lock, an event or a queue then reads and
writes their state like any other traced code, and the conflicts between
tasks that synchronise are the conflicts on that state.

Time is virtual: the loop's clock starts at 0 and only moves when no task
can run, to the earliest timer, which fires at once. So ``asyncio.sleep``,
``wait_for`` and ``timeout`` cost no wall time, and a timeout fires exactly
when nothing else can happen first.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import heapq
import inspect
import os
import re
import threading
import time
from asyncio import events, futures, selector_events
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, NoReturn

from frontrun import _engine
from frontrun._result import InterleavingResult, ReplayResult
from frontrun._run import (
    _JOIN_GRACE,
    Execution,
    Machinery,
    _io_detection,
    _no_collection,
    _Tracing,
    _where,
    explanation,
)
from frontrun._state_walk import reachable
from frontrun._token import threads_recorded
from frontrun._tracefilter import TraceFilter, _patterns
from frontrun._workers import release_pool

_PyTask: Any = asyncio.tasks._PyTask  # type: ignore[attr-defined]
_PyFuture: Any = futures._PyFuture  # type: ignore[attr-defined]

#: The stdlib modules whose Python code is traced in an async exploration:
#: the state of futures, locks, events, conditions, semaphores, barriers
#: and queues lives in their attributes.
ASYNC_TRACE_PACKAGES = ("asyncio.futures", "asyncio.locks", "asyncio.queues")

_ASYNCIO_DIR = os.path.dirname(asyncio.__file__) + os.sep
#: Tasks the tasks may create in one execution (``asyncio.create_task``,
#: ``gather``, ``wait_for`` before 3.12, which redis.asyncio calls for every
#: command, ``TaskGroup``); each gets the next task number after the ones
#: given. The engine explores at most 64 threads in all.
SPAWN_SLOTS = 32
_FRONTRUN_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_STDLIB_DIR = os.path.dirname(os.path.abspath(os.__file__)) + os.sep
_PACKAGES = "-packages" + os.sep


class _Unsupported(Exception):
    """The tasks did something this explorer does not follow yet; the
    execution ends inconclusive with the reason."""


def _user_frame(coro: Any) -> Any:
    """The frame that stands for where ``coro`` is suspended (following
    ``await`` into coroutines and generators): the innermost one of the
    program's own code, outside the standard library and installed
    packages (a driver's ``await`` on its socket is shown at the
    program's ``await`` of the driver), else the innermost outside
    asyncio and frontrun."""
    found = own = None
    for _ in range(64):
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is None:
            break
        name = frame.f_code.co_filename
        if not name.startswith((_ASYNCIO_DIR, _FRONTRUN_DIR)):
            found = frame
            if not (name.startswith(_STDLIB_DIR) or _PACKAGES in name or name.startswith("<")):
                own = frame
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return own or found


#: Where a frame stands: (file name, line, function).
_Place = tuple[str, int, str]


def _place(frame: Any) -> _Place | None:
    return None if frame is None else (frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name)


def _place_text(place: _Place, *, source: bool = False) -> str:
    """``file:line in function``, with ``source`` followed by the line's
    code: ``(await lock.acquire())``."""
    import linecache

    from frontrun._display import source_path

    filename, line, name = place
    where = f"{source_path(filename)}:{line} in {name}"
    text = linecache.getline(filename, line).strip() if source else ""
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{where} ({text})" if text else where


class _Step:
    """One step of a task: where it was resumed (``None``: it started)
    and where it yielded (``None``: it finished), and the code location
    that stands for the step's accesses made inside asyncio."""

    __slots__ = ("code", "offset", "resumed", "task", "yielded")

    def __init__(self, task: int, resumed: _Place | None, last: Any, yielded: Any) -> None:
        """``last``: the frame the task was resumed in, as it is now (where
        a task that finished was last)."""
        self.task = task
        self.resumed = resumed
        self.yielded = _place(yielded)
        where = yielded if yielded is not None else last
        self.code = where.f_code if where is not None else None
        self.offset = max(where.f_lasti, 0) if where is not None else 0

    def __str__(self) -> str:
        start = f"resumed at {_place_text(self.resumed)}" if self.resumed else "started"
        end = f"yielded at {_place_text(self.yielded, source=True)}" if self.yielded else "finished"
        return f"task {self.task}: {start}, {end}"


class _Row(NamedTuple):
    """One row of a task step, shaped as ``_engine.Step``."""

    thread: int
    code: Any
    offset: int
    accesses: list[tuple[int, bool]]


class _SyncRow(NamedTuple):
    """Shaped as ``_engine.SyncStep``."""

    step: int
    thread: int
    op: str
    key: int


class _StepsAtAccesses:
    """The session as the explanation reads it: each task step split into
    one row per source line that made an access, in order (the native side
    records a step at its first access only, and a task's step spans many
    lines). Accesses made inside asyncio (a lock's or a queue's state) are
    shown at the await of the task that made them."""

    def __init__(self, session: Any, awaits: Sequence[_Step]) -> None:
        self._session = session
        by_step: dict[int, list[tuple[int, bool, Any, int]]] = collections.defaultdict(list)
        for step, key, write, code, offset in _engine.task_sites(session):
            by_step[step].append((key, write, code, offset))
        self._steps: list[_Row] = []
        #: Engine step -> its last row.
        self._row_of: dict[int, int] = {}
        for i, (thread, code, offset, accesses) in enumerate(session.steps()):
            here = (awaits[i].code, awaits[i].offset) if i < len(awaits) and awaits[i].code is not None else None
            rows: list[tuple[Any, int, list[tuple[int, bool]]]] = []
            seen: set[tuple[int, bool]] = set()
            for key, write, c, o in by_step.get(i, ()):
                if here is not None and (c is None or c.co_filename.startswith(_ASYNCIO_DIR)):
                    c, o = here
                seen.add((key, write))
                if rows and rows[-1][0] is c and rows[-1][1] == o:
                    rows[-1][2].append((key, write))
                else:
                    rows.append((c, o, [(key, write)]))
            rest = [a for a in accesses if tuple(a) not in seen]
            if rest or not rows:
                c, o = here if here is not None else (code, offset)
                rows.append((c, o, rest))
            for c, o, accs in rows:
                self._steps.append(_Row(thread, c, o, accs))
            self._row_of[i] = len(self._steps) - 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)

    def steps(self) -> list[_Row]:
        return self._steps

    def sync_steps(self) -> list[_SyncRow]:
        return [_SyncRow(self._row_of.get(s.step, s.step), s.thread, s.op, s.key) for s in self._session.sync_steps()]

    def native_steps(self) -> list[list[Any]]:
        return [[] for _ in self._steps]


#: (Typed loosely: the loop overrides private parts of the base class.)
_SelectorEventLoop: Any = selector_events.BaseSelectorEventLoop

#: How long the loop waits for its sockets, when no task can run but a
#: timer could fire, before it lets the timer fire: a local server answers
#: well within it, and a socket nobody expects anything on costs no more.
IO_GRACE = 0.05

#: The slice of a longer wait for the sockets (no timer pending): the wait
#: ends when the session gives the execution up (``deadlock_timeout``).
_IO_SLICE = 0.05

#: How long the sockets must stay quiet, once a task can run again, for the
#: loop to take the next step.
_IO_SETTLE = 0.01


class _TaskLoop(_SelectorEventLoop):
    """An event loop that runs nothing by itself: ``_Driver`` runs its
    callbacks, task by task, and waits for its sockets when no task can
    run. Its clock is virtual."""

    def __init__(self, driver: _Driver) -> None:
        self._driver = driver
        self._virtual_now = 0.0
        super().__init__()

    def time(self) -> float:
        return self._virtual_now

    def call_soon(self, callback: Any, *args: Any, context: Any = None) -> Any:
        self._check_closed()
        handle = events.Handle(callback, args, self, context)
        self._driver.ready(handle, callback)
        return handle

    def call_at(self, when: float, callback: Any, *args: Any, context: Any = None) -> Any:
        self._check_closed()
        timer = events.TimerHandle(when, callback, args, self, context)
        self._driver.add_timer(timer)
        timer._scheduled = True  # type: ignore[attr-defined]
        return timer

    def _timer_handle_cancelled(self, handle: Any) -> None:
        pass  # the driver skips cancelled timers when it reaches them

    def create_future(self) -> Any:
        return _PyFuture(loop=self)

    def create_task(self, coro: Any, *, name: Any = None, context: Any = None, **kwargs: Any) -> Any:
        return self._driver.new_task(coro, name, context)

    def call_soon_threadsafe(self, callback: Any, *args: Any, context: Any = None) -> Any:
        self._driver.unsupported("call_soon_threadsafe (a callback from another thread)")

    def run_in_executor(self, executor: Any, func: Any, *args: Any) -> Any:
        self._driver.unsupported(
            f"run_in_executor / asyncio.to_thread ({getattr(func, '__qualname__', func)!r} would run in a thread "
            "frontrun does not explore)"
        )

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        self._driver.loop_error(context)

    def _write_to_self(self) -> None:
        pass

    def _add_callback(self, handle: Any) -> None:
        # A socket the loop waits for is ready: the driver runs its callback
        # between steps (``_Driver._wait_io``).
        if not handle._cancelled:
            self._driver.io_ready.append(handle)


class _Driver:
    """One execution: the tasks, their ready queues, the timers, and the
    switches between tasks asked of the engine."""

    def __init__(self, session: Any, fns: Sequence[Callable[[Any], Any]], state: Any) -> None:
        self.session = session
        self.fns = fns
        self.state = state
        self.loop = _TaskLoop(self)
        self.queues: list[collections.deque[Any]] = [collections.deque() for _ in range(len(fns) + SPAWN_SLOTS)]
        self.tasks: list[Any] = []
        #: Tasks created by the tasks: (number, coroutine name, creator,
        #: where it was created).
        self.spawned: list[tuple[int, str, int, _Place | None]] = []
        self.index: dict[int, int] = {}
        #: The task whose step runs (None between steps and before the first).
        self.current: int | None = None
        #: The task being created by the driver itself.
        self.creating: int | None = None
        self.pending: collections.deque[Any] = collections.deque()
        #: Callbacks of the sockets found ready (``_wait_io``).
        self.io_ready: collections.deque[Any] = collections.deque()
        #: How long the loop may wait for its sockets when nothing else can
        #: happen (the session gives the execution up after that long).
        self.io_wait = 5.0
        self.timers: list[tuple[float, int, Any, int | None]] = []
        self.timer_seq = 0
        self.blocked: set[int] = set()
        self.finished: set[int] = set()
        self.errors: dict[int, BaseException] = {}
        self.loop_errors: list[dict[str, Any]] = []
        #: Why the execution cannot be checked, if it cannot.
        self.problem: str | None = None
        #: Per engine step: where the task was resumed and where it yielded.
        self.steps: list[_Step] = []
        #: asyncio.Lock -> the task holding it; task -> the lock it waits for.
        self.lock_owner: dict[int, tuple[Any, int]] = {}
        self.lock_wait: dict[int, Any] = {}
        #: The deadlock the execution ended in, in the engine's terms.
        self.deadlock: dict[str, Any] | None = None
        #: Created tasks still waiting when every given task had ended.
        self.left_pending: list[int] = []

    # -- called by the loop ------------------------------------------------

    def unsupported(self, what: str) -> NoReturn:
        why = f"explore_async does not explore {what} yet"
        if self.problem is None:
            self.problem = why
        raise _Unsupported(why)

    def task_of(self, obj: Any) -> int | None:
        return self.index.get(id(obj)) if futures.isfuture(obj) else None

    def ready(self, handle: Any, callback: Any) -> None:
        owner = getattr(callback, "__self__", None)
        if isinstance(owner, (_PyTask, asyncio.Task)):
            t = self.task_of(owner)
            if t is None and self.creating is not None:
                t = self.creating
            if t is None:
                self.unsupported("a task it did not create")
            self.queues[t].append(handle)
            if t in self.blocked:
                self.blocked.discard(t)
                _engine.task_unblock(self.session, t)
            return
        self.pending.append(handle)

    def loop_error(self, context: dict[str, Any]) -> None:
        """A callback raised (asyncio would log it): an error of the task
        whose step ran it. Other reports (a future's exception nobody
        retrieved, found when it is freed) are kept only."""
        self.loop_errors.append(context)
        exc = context.get("exception")
        if isinstance(exc, _Unsupported) or self.current is None or "handle" not in context:
            return
        if isinstance(exc, BaseException):
            self.errors.setdefault(self.current, exc)

    def add_timer(self, timer: Any) -> None:
        self.timer_seq += 1
        heapq.heappush(self.timers, (timer.when(), self.timer_seq, timer, self.current))

    def new_task(self, coro: Any, name: Any, context: Any) -> Any:
        if self.creating is not None:
            return self._make_task(coro, name, context)
        parent = self.current
        child = len(self.tasks)
        if parent is None or child >= len(self.queues):
            if inspect.iscoroutine(coro):
                coro.close()
            if parent is None:
                self.unsupported("a task created outside the tasks' steps (by a callback of the loop)")
            self.unsupported(f"more than {SPAWN_SLOTS} tasks created by the tasks in one execution")
        self.creating = child
        try:
            task = self._make_task(coro, name, context)
        finally:
            self.creating = None
        self.tasks.append(task)
        self.index[id(task)] = child
        where = _place(_user_frame(self.tasks[parent].get_coro()))
        self.spawned.append((child, getattr(coro, "__qualname__", repr(coro)), parent, where))
        _engine.task_spawn(self.session, parent, child)
        return task

    def _make_task(self, coro: Any, name: Any, context: Any) -> Any:
        kwargs: dict[str, Any] = {"loop": self.loop, "name": name}
        if context is not None:
            kwargs["context"] = context
        task = _PyTask(coro, **kwargs)
        # A task abandoned with its execution is not an error to log.
        task._log_destroy_pending = False
        return task

    # -- the execution -----------------------------------------------------

    def run(self) -> None:
        """Runs the execution to its end on the calling thread: every task
        finished, a deadlock, or the execution given up."""
        coros = []
        for fn in self.fns:
            coro = fn(self.state)
            if not inspect.iscoroutine(coro):
                raise TypeError(f"{getattr(fn, '__qualname__', fn)!r} did not return a coroutine")
            coros.append(coro)
        events._set_running_loop(self.loop)
        try:
            for i, (fn, coro) in enumerate(zip(self.fns, coros, strict=True)):
                self.creating = i
                task = self.loop.create_task(coro, name=getattr(fn, "__name__", f"task-{i}"))
                self.creating = None
                self.tasks.append(task)
                self.index[id(task)] = i
            _engine.tasks_enter(self.session)
            for t in range(len(self.fns), len(self.queues)):
                _engine.task_expect_spawn(self.session, t)
            try:
                self._steps()
                if self.problem is None:
                    self.deadlock = self.deadlock_detail()
                self._unretrieved_errors()
            finally:
                kept = _engine.tasks_leave(self.session)
                if not kept and self.problem is None:
                    self.problem = "the trace function was replaced during the execution (a debugger or profiler)"
        finally:
            events._set_running_loop(None)
            self._dispose()

    def _unretrieved_errors(self) -> None:
        """A created task's exception that no task retrieved (asyncio would
        log it as never retrieved) is an error of that task."""
        # Attributes only: asyncio's methods are traced code, and no task's
        # step runs now.
        for t in range(len(self.fns), len(self.tasks)):
            task = self.tasks[t]
            exc = getattr(task, "_exception", None)
            if exc is not None and getattr(task, "_Future__log_traceback", False):
                self.errors[t] = exc

    def _steps(self) -> None:
        _drivers[id(self.loop)] = self
        try:
            self._switches()
        finally:
            del _drivers[id(self.loop)]

    def _switches(self) -> None:
        """Switches between tasks until none can run or the execution is
        given up."""
        while True:
            if not self._any_ready():
                self._wait_io()
            if not self._any_ready():
                self._fire_timers()
            if self.problem is not None:
                self.session.abort(self.problem)
                return
            try:
                t = _engine.task_next(self.session)
            except _engine.ExecutionAborted:
                return
            if t is None:
                return
            self.current = t
            try:
                self._step(t)
            except _Unsupported:
                self.session.abort(self.problem or "unsupported")
                return
            except _engine.ExecutionAborted:
                return

    def _step(self, t: int) -> None:
        task = self.tasks[t]
        coro = task.get_coro()
        frame = _user_frame(coro)
        resumed = None if inspect.getcoroutinestate(coro) == inspect.CORO_CREATED else _place(frame)
        queue = self.queues[t]
        while queue:
            handle = queue.popleft()
            if handle._cancelled:
                continue
            handle._run()
            # A timer that fired for this task (a sleep's end, a timeout)
            # is not a step of its own: what it made ready runs with it.
            if not isinstance(handle, events.TimerHandle):
                break
        while self.pending:
            handle = self.pending.popleft()
            if not handle._cancelled:
                handle._run()
        if task.done():
            self.steps.append(_Step(t, resumed, frame, None))
            # A created task's exception or cancellation goes to whoever
            # awaits it (asyncio logs one nobody retrieves: see
            # _unretrieved_errors).
            if t < len(self.fns):
                if task.cancelled():
                    self.errors[t] = asyncio.CancelledError(f"task {t} was cancelled")
                elif task.exception() is not None:
                    self.errors[t] = task.exception()  # type: ignore[assignment]
            self.finished.add(t)
            _engine.task_finish(self.session, t)
            return
        self.steps.append(_Step(t, resumed, frame, _user_frame(task.get_coro())))
        if not queue:
            waiting_for = self.lock_wait.get(t)
            target = waiting_for if waiting_for is not None else (task._fut_waiter or task)
            self.blocked.add(t)
            _engine.task_block(self.session, t, target)

    def _any_ready(self) -> bool:
        return any(self.queues[t] for t in range(len(self.tasks)) if t not in self.finished)

    def _wait_io(self) -> None:
        """No task can run: wait for the sockets the loop watches (a server's
        answer that a task awaits), and run their callbacks, which ready the
        tasks waiting for them. Only ``IO_GRACE`` when a timer could fire
        instead; up to ``io_wait`` otherwise. The callbacks run between
        steps, in no task's step: the native events they make belong to no
        task (``task_drain``), and a task they wake is woken by the step
        that ran last."""
        selector = self.loop._selector
        if selector is None or len(selector.get_map()) <= 1:  # the loop's self-pipe only
            return
        _engine.task_drain(self.session)
        # The tasks that wait for the sockets, as far as the driver can
        # tell: blocked on a future no lock, event, queue or timer of
        # theirs will complete. The wait lasts until all of them can run,
        # so that which tasks can take the next step does not depend on
        # which answer came first.
        timed = {t[3] for t in self.timers if not t[2]._cancelled}
        expected = [
            t
            for t in sorted(self.blocked)
            if t not in self.lock_wait
            and t not in timed
            and self._waited_primitive(self.tasks[t]._fut_waiter) is self.tasks[t]._fut_waiter
        ]
        last, self.current = self.current, None
        start = time.monotonic()
        limit = IO_GRACE if any(not t[2]._cancelled for t in self.timers) else self.io_wait
        settling = False
        try:
            while True:
                left = limit - (time.monotonic() - start)
                found = selector.select(_IO_SETTLE if settling else max(0.0, min(left, _IO_SLICE)))
                self.loop._process_events(found)
                while self.io_ready or self.pending:
                    handle = (self.io_ready or self.pending).popleft()
                    if not handle._cancelled:
                        handle._run()
                if left <= 0 or self.problem is not None or (settling and not found):
                    return
                # Once the tasks expected can run, the answers already on
                # their way are let in too, until the sockets are quiet.
                settling = settling or (all(self.queues[t] for t in expected) if expected else self._any_ready())
        finally:
            self.current = last

    def _fire_timers(self) -> None:
        """No task can run: the clock moves to the earliest timer, and the
        timers due then fire, each in a step of the task that set it."""
        while self.timers and self.timers[0][2]._cancelled:
            heapq.heappop(self.timers)
        if not self.timers:
            return
        self.loop._virtual_now = max(self.loop._virtual_now, self.timers[0][0])
        while self.timers and self.timers[0][0] <= self.loop._virtual_now:
            _when, _seq, timer, owner = heapq.heappop(self.timers)
            if timer._cancelled:
                continue
            timer._scheduled = False
            if owner is None or owner in self.finished:
                self.problem = (
                    "explore_async does not explore a timer that outlives the task that set it "
                    f"({timer._callback!r}) yet"
                )
                return
            self.queues[owner].append(timer)
            if owner in self.blocked:
                self.blocked.discard(owner)
                _engine.task_unblock(self.session, owner)

    def _dispose(self) -> None:
        """Closes what the execution left unfinished (the tracer is off)."""
        for task in self.tasks:
            if not task.done():
                with contextlib.suppress(BaseException):
                    task.get_coro().close()
        self.queues.clear()
        self.pending.clear()
        self.io_ready.clear()
        self.timers.clear()
        self.lock_owner.clear()
        self.lock_wait.clear()
        self.loop._ready.clear()
        self.loop.close()

    # -- deadlocks ---------------------------------------------------------

    def _waited_primitive(self, future: Any) -> Any:
        """The event, condition, semaphore or queue of the state that
        ``future`` waits in (it is one of their waiters), else ``future``."""
        if future is None:
            return None
        for obj in reachable(self.state, upgrade_locks=False):
            for name in ("_waiters", "_getters", "_putters"):
                waiters = getattr(obj, name, None)
                if isinstance(waiters, collections.deque) and any(w is future for w in waiters):
                    return obj
        return future

    def deadlock_detail(self) -> dict[str, Any] | None:
        """The deadlock of the execution in the engine's terms, with the
        asyncio locks each blocked task holds and the one it waits for."""
        waiting = sorted(t for t in range(len(self.tasks)) if t not in self.finished)
        if not waiting or any(self.queues[t] for t in waiting):
            return None
        if all(t >= len(self.fns) for t in waiting):
            # Every given task ended; what they created and left waiting
            # is left pending, as asyncio.run would cancel it then.
            self.left_pending = waiting
            return None

        def key(t: int, obj: Any) -> int:
            return int(_engine.task_key(self.session, t, obj))

        edges = {}
        for t in waiting:
            holds = [key(t, lock) for lock, owner in self.lock_owner.values() if owner == t]
            lock = self.lock_wait.get(t)
            if lock is not None:
                edges[t] = {"thread": t, "holds": holds, "waits": "lock", "target": key(t, lock), "lock": lock}
            else:
                target = self._waited_primitive(self.tasks[t]._fut_waiter) or self.tasks[t]
                edges[t] = {"thread": t, "holds": holds, "waits": "object", "target": key(t, target)}
        cycle: list[dict[str, Any]] = []
        for start in waiting:
            path, t = [], start
            while t in edges and edges[t]["waits"] == "lock" and t not in path:
                path.append(t)
                owner = self.lock_owner.get(id(edges[t]["lock"]))
                if owner is None:
                    break
                t = owner[1]
            if path and t == start:
                cycle = [edges[x] for x in path]
                break
        strip = [{k: v for k, v in e.items() if k != "lock"} for e in edges.values()]
        return {"cycle": [{k: v for k, v in e.items() if k != "lock"} for e in cycle], "blocked": strip}


#: The drivers running now, by id of their loop: the tracked lock methods
#: find theirs from the running loop.
_drivers: dict[int, _Driver] = {}
_tracking_lock = threading.Lock()
_tracking_users = 0
_lock_methods: tuple[Any, Any] | None = None


async def _tracked_acquire(self: Any) -> bool:
    acquire = _original_lock_method(0)
    driver = _drivers.get(id(events._get_running_loop()))
    t = driver.current if driver is not None else None
    if driver is None or t is None:
        return bool(await acquire(self))
    driver.lock_wait[t] = self
    try:
        got = await acquire(self)
    finally:
        driver.lock_wait.pop(t, None)
    driver.lock_owner[id(self)] = (self, t)
    return bool(got)


def _tracked_release(self: Any) -> None:
    driver = _drivers.get(id(events._get_running_loop()))
    if driver is not None:
        driver.lock_owner.pop(id(self), None)
    _original_lock_method(1)(self)


def _original_lock_method(which: int) -> Any:
    methods = _lock_methods
    if methods is None:  # uninstalled while a call was under way
        return (asyncio.locks.Lock.acquire, asyncio.locks.Lock.release)[which]
    return methods[which]


@contextlib.contextmanager
def _lock_tracking() -> Iterator[None]:
    """Which task holds each ``asyncio.Lock``, and which lock a blocked task
    waits for, to name a deadlock's cycle (asyncio's locks do not record
    their owner): ``Lock.acquire`` and ``release`` are wrapped while an
    async exploration runs. Only the loops of ``_drivers`` are tracked;
    other loops see the plain methods' behaviour."""
    global _tracking_users, _lock_methods
    lock_cls = asyncio.locks.Lock
    with _tracking_lock:
        if _tracking_users == 0:
            _lock_methods = (lock_cls.acquire, lock_cls.release)
            functools.update_wrapper(_tracked_acquire, _lock_methods[0])
            functools.update_wrapper(_tracked_release, _lock_methods[1])
            lock_cls.acquire = _tracked_acquire  # type: ignore[method-assign,assignment]
            lock_cls.release = _tracked_release  # type: ignore[method-assign]
        _tracking_users += 1
    try:
        yield
    finally:
        with _tracking_lock:
            _tracking_users -= 1
            if _tracking_users == 0 and _lock_methods is not None:
                lock_cls.acquire, lock_cls.release = _lock_methods  # type: ignore[method-assign]
                _lock_methods = None


def _call(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``, awaited on a loop of its own when it is a coroutine
    function (``setup`` and the invariant may be ``async def``)."""
    value = fn(*args)
    if inspect.iscoroutine(value):
        return asyncio.run(value)
    return value


class _Waiter(NamedTuple):
    """A blocked task of a deadlock, shaped as ``_engine.BlockedThread``."""

    thread: int
    holds: list[int]
    waits: str
    target: int


class _Deadlock(NamedTuple):
    """The tasks' deadlock, shaped as ``_engine.DeadlockDetail``."""

    cycle: list[_Waiter]
    blocked: list[_Waiter]


class _Ended(NamedTuple):
    """``Session.end()``'s record with the deadlock the loop saw in the
    tasks' terms (the engine sees each task wait on an object, not on the
    asyncio lock it wants)."""

    schedule: list[int]
    races: list[Any]
    deadlock: list[int] | None
    deadlock_detail: _Deadlock | None
    engine_aborted: str | None
    aborted: str | None

    @classmethod
    def with_deadlock(cls, end: Any, detail: dict[str, Any]) -> _Ended:
        waiters = {name: [_Waiter(**e) for e in detail[name]] for name in ("cycle", "blocked")}
        found = _Deadlock(waiters["cycle"], waiters["blocked"])
        threads = [e.thread for e in (found.cycle or found.blocked)]
        return cls(end.schedule, list(end.races), threads, found, end.engine_aborted, end.aborted)


@dataclass
class AsyncExecution(Execution):
    """An execution of tasks, with where each step resumed and yielded."""

    awaits: list[_Step] = field(default_factory=list)
    #: Tasks the tasks created (see ``_Driver.spawned``).
    spawned: list[tuple[int, str, int, _Place | None]] = field(default_factory=list)


def _drive(driver: _Driver, failures: list[BaseException]) -> None:
    try:
        driver.run()
    except BaseException as exc:  # a bug of the driver, or a worker that is not a coroutine function
        failures.append(exc)
        driver.session.abort(f"the event loop failed: {type(exc).__name__}: {exc}")


class AsyncMachinery(Machinery):
    """The run machinery of ``explore_async``: executions run on a
    ``_TaskLoop`` on a thread of their own, watched by the calling thread
    (``timeout_per_run``, ``deadlock_timeout``)."""

    def __init__(self, num_tasks: int, trace_filter: TraceFilter, *, detect_io: bool, native_hooks: bool) -> None:
        # No worker threads: only the thread for setup() and the invariant.
        super().__init__(0, trace_filter, detect_io=detect_io, native=detect_io, native_hooks=native_hooks)
        self.num_threads = num_tasks + SPAWN_SLOTS

    def execute(
        self,
        session: Any,
        setup: Callable[[], Any],
        threads: Sequence[Callable[[Any], Any]],
        timeout: float,
        deadlock_timeout: float,
    ) -> Execution:
        try:
            state = self.pool.offload.call("setup()", timeout, functools.partial(_call, setup))
        except BaseException:
            session.abort("setup() raised")
            session.end()
            raise
        session.prenumber(reachable(state, upgrade_locks=False))
        driver = _Driver(session, threads, state)
        driver.io_wait = deadlock_timeout
        failures: list[BaseException] = []
        loop_thread = threading.Thread(target=_drive, args=(driver, failures), name="frontrun-loop", daemon=True)
        with _no_collection():
            loop_thread.start()
            stuck = session.wait(timeout, deadlock_timeout)
            loop_thread.join(_JOIN_GRACE)
        if failures and isinstance(failures[0], TypeError):
            session.end()
            raise failures[0]
        aborted = None
        leaked = []
        if stuck is not None:
            why, tid, code, offset = stuck
            who = f"task {tid}" if tid is not None else "no task"
            aborted = f"{why}; {who} was running, last seen at {_where(code, offset)}"
        if loop_thread.is_alive():
            leaked.append(loop_thread.name)
        report: Any = session.end()
        if report.deadlock and driver.deadlock is not None:
            report = _Ended.with_deadlock(report, driver.deadlock)
        elif report.deadlock and driver.left_pending:
            report = _Ended(report.schedule, list(report.races), None, None, report.engine_aborted, report.aborted)
        engine_reason = report.engine_aborted
        if engine_reason and not engine_reason.startswith("end_execution was called"):
            aborted = engine_reason
        elif aborted is None and report.aborted:
            aborted = report.aborted
        notes = []
        if driver.left_pending:
            notes.append(
                "tasks the tasks created were still waiting when every given task had ended: they were left "
                "pending (asyncio.run would cancel them), and what their cancellation runs was not explored"
            )
        return AsyncExecution(
            state,
            report,
            dict(driver.errors),
            aborted,
            leaked,
            notes=notes,
            awaits=driver.steps,
            spawned=driver.spawned,
        )

    def explanation(self, session: Any, run: Execution, threads: Sequence[Callable[[Any], Any]], **kw: Any) -> str:
        awaits = getattr(run, "awaits", [])
        spawned = getattr(run, "spawned", [])
        kw["token_threads"] = threads_recorded(run.report.schedule, len(threads), self.num_threads)
        text = explanation(_StepsAtAccesses(session, awaits), run, threads, **kw)
        text = _TASK_WORDS.sub(lambda m: {"thread": "task", "Thread": "Task", "Threads": "Tasks"}[m.group(1)], text)
        text = (
            text.replace("every unfinished thread is blocked", "every unfinished task is blocked")
            .replace("frontrun.replay(", "frontrun.replay_async(")
            .replace("(exception in a thread", "(exception in a task")
        )
        text = _without_asyncio_bookkeeping(text)
        if spawned:
            made = ", ".join(
                f"{t} = {name} (created by task {parent}" + (f" at {_place_text(where)})" if where else ")")
                for t, name, parent, where in spawned[:_MAX_CREATED_SHOWN]
            )
            if len(spawned) > _MAX_CREATED_SHOWN:
                made += f", and {len(spawned) - _MAX_CREATED_SHOWN} more created tasks"
            lines = text.split("\n")
            at = next((i for i, ln in enumerate(lines) if ln.startswith("Tasks: ")), None)
            if at is None:
                lines.insert(1, "Tasks created by the tasks: " + made)
            else:
                lines[at] += ", " + made
            text = "\n".join(lines)
        if awaits:
            lines = ["", "Steps (each runs from where its task resumed to the await where it yielded):"]
            for i, step in enumerate(awaits[:_MAX_STEPS_SHOWN]):
                lines.append(f"  {i + 1:>3}. {step}")
            if len(awaits) > _MAX_STEPS_SHOWN:
                lines.append(f"  ... {len(awaits) - _MAX_STEPS_SHOWN} more")
            head, sep, tail = text.partition("\nSchedule")
            text = head + "\n".join(lines) + "\n" + sep + tail if sep else text + "\n".join(lines)
        return text


def _without_asyncio_bookkeeping(text: str) -> str:
    """The explanation with the conflicts on asyncio's bookkeeping of tasks
    and futures folded into one line, when other conflicts remain: they
    order the steps (and are explored) but are not the program's race."""
    from frontrun._explain import ASYNCIO_BOOKKEEPING

    head, sep, rest = text.partition("\nConflicts:\n")
    if not sep:
        return text
    block, blank, tail = rest.partition("\n\n")
    lines = block.split("\n")
    # A conflict line: "  <kind> on <location>: <sentence>".
    on = [ln.partition(" on ")[2].partition(": ")[0] for ln in lines]
    kept = [ln for ln, where in zip(lines, on, strict=True) if not ASYNCIO_BOOKKEEPING.fullmatch(where)]
    dropped = len(lines) - len(kept)
    if not dropped or not kept:
        return text
    kept.append(
        f"  ({dropped} conflict{'s' if dropped != 1 else ''} on asyncio's own task and future fields not shown)"
    )
    return head + sep + "\n".join(kept) + blank + tail


_TASK_WORDS = re.compile(r"\b(Threads|thread|Thread)\b(?= \d|:)")
_MAX_STEPS_SHOWN = 40
_MAX_CREATED_SHOWN = 4


@contextlib.contextmanager
def running_async(num_tasks: int, trace_filter: TraceFilter, *, detect_io: bool) -> Iterator[AsyncMachinery]:
    """``running()`` for tasks: the tracer and, with ``detect_io``, the
    Python-level I/O wrappers and the native events (the run-time hooks
    installed when the library was not preloaded), which the loop's thread
    makes for the task that runs; no cooperative threading primitives."""
    native_hooks = False
    if detect_io:
        from frontrun import _runtime_hooks

        native_hooks = _runtime_hooks.ensure()
    machinery = AsyncMachinery(num_tasks, trace_filter, detect_io=detect_io, native_hooks=native_hooks)
    try:
        with _Tracing(), _io_detection(detect_io), _lock_tracking():
            yield machinery
    finally:
        machinery.close_all()
        release_pool(machinery.pool)


def _check_coroutine_functions(threads: Sequence[Callable[..., Any]]) -> None:
    for i, fn in enumerate(threads):
        target = fn.func if isinstance(fn, functools.partial) else fn
        if not (inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(type(target).__call__)):
            raise TypeError(
                f"threads[{i}] must be a coroutine function (async def) taking the state, got {fn!r}; "
                "explore_dpor explores plain functions in threads"
            )


def _sync_setup(setup: Callable[[], Any]) -> Callable[[], Any]:
    if not inspect.iscoroutinefunction(setup):
        return setup

    @functools.wraps(setup)
    def run_setup() -> Any:
        return _call(setup)

    return run_setup


def _sync_invariant(invariant: Callable[[Any], Any]) -> Callable[[Any], Any]:
    if not inspect.iscoroutinefunction(invariant):
        return invariant
    from frontrun._invariant import asserts

    def run_invariant(state: Any) -> Any:
        value = _call(invariant, state)
        # An async invariant that checks with assert passes with None.
        return True if value is None and asserts(invariant) else value

    return run_invariant


def explore_async(
    setup: Callable[[], Any],
    threads: Sequence[Callable[[Any], Any]],
    invariant: Callable[[Any], Any],
    max_executions: int | None = None,
    preemption_bound: int | None = 2,
    max_branches: int = 100_000,
    timeout_per_run: float = 5.0,
    stop_on_first: bool = True,
    detect_io: bool = True,
    deadlock_timeout: float = 5.0,
    reproduce_on_failure: int = 10,
    total_timeout: float | None = None,
    *,
    trace_packages: Iterable[str] = (),
    skip_packages: Iterable[str] = (),
    report_dir: str | os.PathLike[str] | None = None,
) -> InterleavingResult:
    """Explore the distinct interleavings of asyncio tasks over ``setup()``'s state.

    ``threads`` holds coroutine functions (``async def f(state)``), each run
    as a task on one event loop that frontrun controls; the parameters, the
    defaults and the :class:`InterleavingResult` are those of
    :func:`explore_dpor`. A task runs uninterrupted from one point where it
    yields to the loop to the next (an ``await`` that suspends,
    ``asyncio.sleep(0)``, a wait on an asyncio lock, event, condition,
    semaphore or queue), as it does under asyncio: the interleavings
    explored are the orders of those steps. ``setup`` and ``invariant`` may
    be coroutine functions too (each runs on a loop of its own, untraced).
    Time is virtual: sleeps and timeouts cost no wall time, and a timer
    fires when no task can run before it. See docs/async.md.
    """
    from frontrun import _args, _stats
    from frontrun._run import trace_filter_of
    from frontrun.dpor import explore_with

    max_executions = _stats.max_executions(max_executions)
    report_dir = _stats.report_dir(report_dir)
    threads, report_dir = _args.check_explore(
        setup=setup,
        threads=threads,
        invariant=invariant,
        max_executions=max_executions,
        preemption_bound=preemption_bound,
        max_branches=max_branches,
        timeout_per_run=timeout_per_run,
        stop_on_first=stop_on_first,
        detect_io=detect_io,
        deadlock_timeout=deadlock_timeout,
        reproduce_on_failure=reproduce_on_failure,
        total_timeout=total_timeout,
        report_dir=report_dir,
        coroutines=True,
    )
    _check_coroutine_functions(threads)
    trace_filter = trace_filter_of((*_patterns("trace_packages", trace_packages), *ASYNC_TRACE_PACKAGES), skip_packages)
    with running_async(len(threads), trace_filter, detect_io=detect_io) as machinery:
        return explore_with(
            machinery,
            _sync_setup(setup),
            threads,
            _sync_invariant(invariant),
            max_executions=max_executions,
            preemption_bound=preemption_bound,
            max_branches=max_branches,
            timeout_per_run=timeout_per_run,
            stop_on_first=stop_on_first,
            deadlock_timeout=deadlock_timeout,
            reproduce_on_failure=reproduce_on_failure,
            total_timeout=total_timeout,
            report_dir=report_dir,
        )


def replay_async(
    schedule: Sequence[int] | str,
    setup: Callable[[], Any],
    threads: Sequence[Callable[[Any], Any]],
    invariant: Callable[[Any], Any] | None = None,
    *,
    timeout: float = 5.0,
    deadlock_timeout: float = 5.0,
    trace_packages: Iterable[str] = (),
    skip_packages: Iterable[str] = (),
    detect_io: bool = True,
) -> ReplayResult[Any]:
    """Run the tasks once following ``schedule`` (a counterexample of
    :func:`explore_async` or its replay token), like :func:`frontrun.replay`."""
    from frontrun import _args, _token
    from frontrun._run import trace_filter_of

    _args.check_callable("setup", setup, coroutines=True)
    threads = _args.check_threads(threads, coroutines=True)
    _check_coroutine_functions(threads)
    if invariant is not None:
        _args.check_callable("invariant", invariant, coroutines=True)
    _args.check_seconds("timeout", timeout)
    _args.check_seconds("deadlock_timeout", deadlock_timeout)
    _args.check_bool("detect_io", detect_io)
    recorded, sched = (None, schedule)
    if isinstance(schedule, str):
        recorded, sched = _token.parse(schedule)
    # A token of a schedule with created tasks records them too.
    if recorded is not None and recorded not in (len(threads), len(threads) + SPAWN_SLOTS):
        raise ValueError(f"the schedule was recorded with {recorded} tasks, but {len(threads)} were given")
    sched = _args.check_schedule(sched, len(threads) + SPAWN_SLOTS)
    trace_filter = trace_filter_of((*_patterns("trace_packages", trace_packages), *ASYNC_TRACE_PACKAGES), skip_packages)
    with running_async(len(threads), trace_filter, detect_io=detect_io) as machinery:
        return machinery.replay(
            sched,
            _sync_setup(setup),
            threads,
            None if invariant is None else _sync_invariant(invariant),
            timeout=timeout,
            deadlock_timeout=deadlock_timeout,
        )
