"""The run machinery: what every entry point does to run executions.

``explore_dpor``, ``replay`` and the run that ``@frontrun.reproduce``
forces all run the same way: worker threads from a pool, the cooperative
primitives and the tracer installed, Python-level I/O detection, a native
session per search or replay, ``setup()`` and the invariant run on a
thread of their own and bounded. ``running()`` sets that up once for a call and takes it down at
the end, whatever happens; ``Machinery.execute`` runs one execution under
a session and ``Machinery.replay`` one recorded schedule. The entry points
keep only what is theirs: the search loop, the verdict, the explanation.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import sys
import threading
import types
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from frontrun import _coop, _debugger, _engine, _spawn, _stats, _vclock, _workers
from frontrun._code import line_of
from frontrun._invariant import check_invariant
from frontrun._opcodes import classify
from frontrun._result import ReplayResult
from frontrun._state_walk import reachable
from frontrun._tables import ensure_tables
from frontrun._tracefilter import TraceFilter, is_dynamic
from frontrun._workers import ASYNC_INTERRUPT_IS_SAFE, Stuck, WorkerPool, interrupt, release_pool

if TYPE_CHECKING:
    from frontrun._deadlock import Deadlock
    from frontrun._unseen_io import Watch

_USE_MONITORING = sys.version_info >= (3, 12)
_JOIN_GRACE = 2.0


# ---------------------------------------------------------------------------
class _CoroutineRefused(TypeError):
    """A callable given to frontrun returned a coroutine: the call did
    nothing yet, and nothing would ever await it."""


def refuse_coroutine(name: str, value: Any) -> None:
    if isinstance(value, types.CoroutineType):
        value.close()  # never awaited: said here rather than by a RuntimeWarning
        raise _CoroutineRefused(
            f"{name} returned a coroutine; frontrun runs threads and does not await it (give a synchronous callable)"
        )


# Tracing setup
# ---------------------------------------------------------------------------


class _Tracing:
    """Process-wide part of the tracer: the ``sys.monitoring`` registration
    on 3.12+ (on 3.10/3.11 each worker installs its own trace function).

    One registration serves every exploration running at the time: two
    would deliver each instruction twice. The native callback finds the
    exploration a thread belongs to by itself.
    """

    _lock = threading.Lock()
    _users = 0
    _tool: int | None = None

    def __enter__(self) -> _Tracing:
        ensure_tables()
        if not _USE_MONITORING:
            return self
        with _Tracing._lock:
            if _Tracing._users == 0:
                _Tracing._tool = _debugger.monitoring_tool = self._register()
            _Tracing._users += 1
        return self

    @staticmethod
    def _register() -> int:
        mon = sys.monitoring  # type: ignore[attr-defined]
        # 3 and 4 have no assigned role; 2 (profiler) and 5 only as a fallback,
        # so cProfile and friends can still run alongside.
        for tool in (3, 4, mon.PROFILER_ID, mon.OPTIMIZER_ID):
            if mon.get_tool(tool) is None:
                mon.use_tool_id(tool, "frontrun")
                mon.register_callback(tool, mon.events.INSTRUCTION, _engine.instruction_callback())
                mon.set_events(tool, mon.events.INSTRUCTION)
                return tool
        raise RuntimeError("no free sys.monitoring tool id for frontrun (ids 2 to 5 are all in use)")

    @staticmethod
    def forget_after_fork() -> None:
        """In a forked child: no exploration of the parent runs here, so
        the registration goes (a later exploration of the child makes its
        own)."""
        _Tracing._lock = _coop.original(threading, "Lock")()
        tool, _Tracing._tool, _Tracing._users = _Tracing._tool, None, 0
        _debugger.monitoring_tool = None
        if _USE_MONITORING and tool is not None:
            mon = sys.monitoring  # type: ignore[attr-defined]
            mon.set_events(tool, 0)
            mon.register_callback(tool, mon.events.INSTRUCTION, None)
            mon.free_tool_id(tool)

    def __exit__(self, *exc: object) -> None:
        if not _USE_MONITORING:
            return
        with _Tracing._lock:
            _Tracing._users -= 1
            if _Tracing._users or _Tracing._tool is None:
                return
            tool, _Tracing._tool = _Tracing._tool, None
            _debugger.monitoring_tool = None
            mon = sys.monitoring  # type: ignore[attr-defined]
            mon.set_events(tool, 0)
            mon.register_callback(tool, mon.events.INSTRUCTION, None)
            mon.free_tool_id(tool)
            # Locations answered DISABLE during the exploration start clean.
            mon.restart_events()


#: Trace filters by their patterns, kept so that their answers are reused
#: by every call with the same patterns (a handful in a test suite).
_filters: dict[tuple[tuple[str, ...], tuple[str, ...]], TraceFilter] = {}


def trace_filter_of(trace_packages: Iterable[str], skip_packages: Iterable[str]) -> TraceFilter:
    """The caller's patterns plus the session's (pytest options and ini)."""
    own = TraceFilter(trace_packages, skip_packages)
    key = (own.patterns + _stats.DEFAULTS.trace_packages, own.skip_patterns + _stats.DEFAULTS.skip_packages)
    found = _filters.get(key)
    if found is None:
        if len(_filters) >= 64:
            _filters.clear()
        found = _filters[key] = TraceFilter(*key)
    return found


def decider(trace_filter: TraceFilter, entered: list[str] | None = None) -> Callable[[types.CodeType, Any, bool], bool]:
    """The tracer's ``decide(code, module, caller_traced)``; ``entered``
    collects the untraced modules that traced code calls into."""

    def decide(code: types.CodeType, module: Any, caller_traced: bool) -> bool:
        if is_dynamic(code):
            return caller_traced
        name = module if isinstance(module, str) else None
        traced = trace_filter.wants(code, name)
        if not traced and caller_traced and entered is not None and name is not None:
            if name != "frontrun" and not name.startswith("frontrun.") and name not in entered:
                entered.append(name)
        return traced

    return decide


# ---------------------------------------------------------------------------
# One execution
# ---------------------------------------------------------------------------


@dataclass
class Execution:
    state: Any
    report: _engine.ExecutionEnd
    errors: dict[int, BaseException] = field(default_factory=dict)
    aborted: str | None = None
    leaked_threads: list[str] = field(default_factory=list)
    #: What the execution did not check though it ended (for the result's
    #: notes, once per exploration).
    notes: list[str] = field(default_factory=list)
    #: A worker started a thread and the session had no spare thread ids
    #: for it: the search starts again with some (``_spawn.SLOTS``).
    wants_spare: bool = False
    #: The threads the workers started, in thread-id order after the
    #: workers: how the explanation names them.
    started: list[str] = field(default_factory=list)
    #: No thread could run at the end, but only threads the workers
    #: started and left waiting (idle thread-pool workers, daemon
    #: threads): not a deadlock (``_spawn.Launches.left_waiting``).
    left_waiting: bool = False

    @property
    def deadlock_detail(self) -> Any:
        """The engine's account of the execution's deadlock, if it had one."""
        return None if self.left_waiting else self.report.deadlock_detail


def _run_worker(
    session: Any,
    tid: int,
    fn: Callable[[Any], Any],
    state: Any,
    errors: dict[int, BaseException],
    clock: _vclock.Clock | None = None,
    launches: _spawn.Launches | None = None,
) -> None:
    _vclock.enter(clock)
    _spawn.enter(launches)
    try:
        session.enter(tid)
        refuse_coroutine(f"threads[{tid}]", fn(state))
    except _engine.ExecutionAborted:
        pass
    except BaseException as exc:
        errors[tid] = exc
    finally:
        _spawn.leave()
        _vclock.leave()
        if not _workers.is_forked_thread():
            session.leave(tid)


def _after_fork_in_child() -> None:
    """The child of a ``fork`` (``os.fork``, multiprocessing's fork start
    method) made by a worker runs freely: its one thread is not an explored
    thread. It leaves the scheduler, tracing stops, and when the worker
    function returns in the child, its thread ends (the child then exits
    with status 0, as a forked thread's child does). The parent's pools and
    tracing registration do not exist in the child; they are forgotten."""
    _workers.mark_forked_thread()
    _engine.detach_after_fork()
    _Tracing.forget_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _where(code: Any, offset: int | None) -> str:
    if code is None or offset is None:
        return "before its first traced instruction"
    return f"{code.co_filename}:{line_of(code, offset)} in {code.co_name}"


@contextlib.contextmanager
def _no_collection() -> Iterator[None]:
    """No automatic garbage collection while the workers run.

    A collection runs the finalizers (``__del__``, weakref callbacks) of
    whatever it frees in the thread that happened to allocate, at a moment
    set by allocation counts: traced library finalizers (a connection's
    ``__del__``) would then add steps that no schedule controls. Deferred,
    the collection happens in the main thread between executions.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _run_one(
    session: Any,
    pool: WorkerPool,
    setup: Callable[[], Any],
    threads: Sequence[Callable[[Any], Any]],
    timeout: float,
    deadlock_timeout: float,
    virtual_time: bool = True,
    unseen: Watch | None = None,
) -> Execution:
    # Objects concurrent.futures makes from here to the execution's end are
    # cooperative (a pool made in setup() or by a worker is explored).
    _coop.cooperative_futures(True)
    try:
        try:
            state = pool.offload.call("setup()", timeout, setup)
            refuse_coroutine("setup", state)
        except BaseException:
            session.abort("setup() raised")
            session.end()
            raise
        session.prenumber(reachable(state, upgrade_locks=_coop.installed()))
        errors: dict[int, BaseException] = {}
        clock = _vclock.Clock() if virtual_time else None
        if unseen is not None:
            unseen.before()
        spare = session.num_threads - len(threads)
        launches = _spawn.Launches(session, len(threads), spare, errors, clock)
        if spare:
            session.expect_spawns(len(threads))
        with _no_collection():
            session.kick()
            for i, fn in enumerate(threads):
                pool.threads[i].submit(_run_worker, session, i, fn, state, errors, clock, launches)
            stuck = session.wait(timeout, deadlock_timeout)
        refused = next((e for e in errors.values() if isinstance(e, _CoroutineRefused)), None)
        if refused is not None:
            session.end()
            raise refused
        aborted = None
        leaked: list[str] = []
        if stuck is not None:
            who = f"thread {stuck.thread}" if stuck.thread is not None else "no thread"
            aborted = f"{stuck.reason}; {who} held the turn, last seen at {_where(stuck.code, stuck.offset)}"
            # The workers were released (see the native session's `abort`): they
            # run to their end unscheduled, committing or rolling back what they
            # started. Those still running after the grace are replaced in the
            # pool; ending the execution below makes them unwind at their next
            # traced instruction.
            if not pool.wait_idle(_JOIN_GRACE):
                leaked += pool.replace_stuck()
        report = session.end()
        for thread in pool.retired:
            thread.join(0.05)
            if thread.is_alive() and ASYNC_INTERRUPT_IS_SAFE:
                # Still running, in code the tracer does not reach.
                interrupt(thread)
        pool.retired = [t for t in pool.retired if t.is_alive()]
        engine_reason = report.engine_aborted
        if engine_reason and not engine_reason.startswith("end_execution was called"):
            # The engine cut the execution short (max_branches, sleep-set
            # blocked, ...): its reason says more than "no thread can take the
            # next step". (When we abandoned the execution ourselves, the engine
            # only says it ended early.)
            aborted = engine_reason
        elif aborted is None and report.aborted:
            aborted = report.aborted
        # First: either may also be why the execution was given up otherwise.
        why = None
        if launches.submitted is not None:
            why = (
                f"a worker handed work to a thread pool ({launches.submitted}); frontrun does not explore "
                "the threads of a ThreadPoolExecutor, so what they did was not checked"
            )
        if launches.wanted is not None:
            # The execution was given up where the thread would have started.
            aborted = (
                f"the workers started more than {spare} threads in one execution (the last at "
                f"{launches.wanted}); frontrun explores up to {spare}, so the execution was not checked"
                if spare
                else f"a worker started a thread at {launches.wanted}: exploring again with thread ids to spare"
            )
        elif why is not None:
            aborted = why if aborted is None else f"{why}; then: {aborted}"
        if aborted is None and unseen is not None:
            aborted = unseen.after()
        left_waiting = False
        notes: list[str] = []
        if aborted is None and report.deadlock_detail is not None:
            waiting = launches.left_waiting(report.deadlock_detail)
            if waiting:
                left_waiting = True
                notes.append(waiting)
        if aborted is None and (report.deadlock_detail is None or left_waiting):
            notes += launches.notes()
            notes += [
                f"a thread that native code started at {site} was still running when its worker ended: what it "
                "did after that was not seen"
                for site in session.native_threads_unfinished
            ]
        return Execution(
            state,
            report,
            errors,
            aborted,
            leaked,
            notes,
            wants_spare=launches.wanted is not None and not spare,
            started=[f"{s.name} (started by thread {s.parent} at {s.where})" for s in launches.started],
            left_waiting=left_waiting,
        )
    finally:
        _coop.cooperative_futures(False)


def deadlock_of(session: Any, run: Execution) -> Deadlock | None:
    """The deadlock of the execution just run (read it before the next
    execution begins: keys are per execution)."""
    detail = run.deadlock_detail
    if detail is None:
        return None
    from frontrun._deadlock import build_deadlock

    return build_deadlock(detail, session.describe, run.state)


def explanation(
    session: Any,
    run: Execution,
    threads: Sequence[Callable[[Any], Any]],
    *,
    num_explored: int,
    deadlock: Deadlock | None,
    invariant_failed: bool,
    detect_io: bool,
    virtual_time: bool = True,
    token_threads: int | None = None,
) -> str:
    """The explanation of the failing execution just run (read before the
    next execution begins: keys are per execution). ``token_threads``: the
    number of threads the replay token records, when the schedule has more
    than ``threads`` (tasks the tasks created)."""
    from frontrun._deadlock import sync_tags
    from frontrun._explain import explain, thread_name

    return explain(
        steps=session.steps(),
        describe=session.describe,
        num_explored=num_explored,
        schedule=run.report.schedule,
        errors=run.errors,
        deadlock=deadlock,
        invariant_failed=invariant_failed,
        sync_tags=sync_tags(session.sync_steps(), session.describe, run.state),
        thread_names=[thread_name(fn) for fn in threads] + run.started,
        native_steps=session.native_steps(),
        detect_io=detect_io,
        virtual_time=virtual_time,
        token_threads=token_threads,
    )


# ---------------------------------------------------------------------------
# The machinery of one call
# ---------------------------------------------------------------------------


class Machinery:
    """What one call of an entry point holds while it runs executions: the
    worker threads, the trace filter and decision function its sessions
    share, and the sessions it made (closed when the call ends). Made by
    ``running()``."""

    def __init__(
        self,
        num_threads: int,
        trace_filter: TraceFilter,
        *,
        detect_io: bool,
        native: bool,
        native_hooks: bool,
        virtual_time: bool = True,
    ) -> None:
        self.num_threads = num_threads
        self.trace_filter = trace_filter
        self.detect_io = detect_io
        #: Whether workers run on a virtual clock (``_vclock``).
        self.virtual_time = virtual_time
        #: Whether sessions read the native events.
        self.native = native
        #: Whether native events can be seen (preloaded, or hooks installed).
        self.native_hooks = native_hooks
        #: Spare thread ids of the sessions made from now on, for threads
        #: the workers start (``_spawn``).
        self.spare_threads = 0
        self.pool = WorkerPool(num_threads)
        #: With native events wanted but not available: the check that
        #: no native socket traffic went unseen.
        self.unseen: Watch | None = None
        if detect_io and native and not native_hooks:
            from frontrun import _runtime_hooks, _unseen_io

            self.unseen = _unseen_io.Watch(_runtime_hooks.unseen_reason() or "the library is not loaded")
        self._decide = decider(trace_filter)
        self._sessions: list[Any] = []

    def session(
        self, mode: Literal["serial", "dpor", "replay"], *, entered: list[str] | None = None, **options: Any
    ) -> Any:
        """A native session (``mode`` "dpor", "replay" or "serial"); with
        ``entered``, its decision function collects the untraced modules
        that traced code calls into."""
        decide = self._decide if entered is None else decider(self.trace_filter, entered)
        if mode == "dpor":
            session = _engine.Session.search(self.session_threads, decide, classify, native=self.native, **options)
        elif mode == "replay":
            schedule = options.pop("schedule")
            session = _engine.Session.replay(
                self.session_threads, decide, classify, schedule, native=self.native, **options
            )
        else:
            session = _engine.Session.serial(self.session_threads, decide, classify, **options)
        self._sessions.append(session)
        return session

    @property
    def session_threads(self) -> int:
        """The threads a session of this call has: the workers, and the
        spare ids for threads they start."""
        return self.num_threads + self.spare_threads

    def close(self, session: Any) -> None:
        session.close()
        self._sessions.remove(session)

    def close_all(self) -> None:
        for session in self._sessions:
            session.close()
        self._sessions.clear()

    def execute(
        self,
        session: Any,
        setup: Callable[[], Any],
        threads: Sequence[Callable[[Any], Any]],
        timeout: float,
        deadlock_timeout: float,
    ) -> Execution:
        """Run one execution of ``session`` (begun by the caller). Raises
        ``Stuck`` when ``setup()`` overran its bound."""
        return _run_one(session, self.pool, setup, threads, timeout, deadlock_timeout, self.virtual_time, self.unseen)

    def explanation(self, session: Any, run: Execution, threads: Sequence[Callable[[Any], Any]], **kw: Any) -> str:
        """The explanation of the failing execution just run (see
        ``explanation``)."""
        return explanation(session, run, threads, **kw)

    def replay(
        self,
        schedule: Sequence[int],
        setup: Callable[[], Any],
        threads: Sequence[Callable[[Any], Any]],
        invariant: Callable[[Any], bool] | None,
        *,
        timeout: float,
        deadlock_timeout: float,
    ) -> ReplayResult[Any]:
        """Run ``threads`` once following ``schedule``, with the explanation
        of the failure when it fails."""
        session = self.session("replay", schedule=list(schedule))
        try:
            if not session.begin():
                raise RuntimeError("the replay session refused to start")
            try:
                run = self.execute(session, setup, threads, timeout, deadlock_timeout)
            except Stuck as stuck:
                return ReplayResult(None, [], None, {}, str(stuck))
            deadlock = deadlock_of(session, run)
            holds, invariant_error = None, None
            if invariant is not None and run.aborted is None and deadlock is None:
                try:
                    holds, invariant_error = self.pool.offload.call(
                        "the invariant", timeout, functools.partial(check_invariant, invariant, run.state)
                    )
                except Stuck as stuck:
                    return ReplayResult(run.state, list(run.report.schedule), None, run.errors, str(stuck))
            text = None
            if run.errors or holds is False or deadlock is not None:
                text = self.explanation(
                    session,
                    run,
                    threads,
                    num_explored=1,
                    deadlock=deadlock,
                    invariant_failed=holds is False,
                    detect_io=self.detect_io,
                    virtual_time=self.virtual_time,
                )
        finally:
            self.close(session)
        return ReplayResult(
            run.state,
            list(run.report.schedule),
            holds,
            run.errors,
            run.aborted,
            text,
            deadlock=deadlock,
            invariant_error=invariant_error,
        )

    def reproduces(
        self,
        schedule: Sequence[int],
        setup: Callable[[], Any],
        threads: Sequence[Callable[[Any], Any]],
        invariant: Callable[[Any], bool],
        *,
        timeout: float,
        deadlock_timeout: float,
    ) -> bool:
        """Whether running ``threads`` once following ``schedule`` fails as
        ``replay`` would say (a thread raised, the invariant failed, or a
        deadlock). Only the verdict: nothing is named or explained.

        The accesses are still described as in every explored execution:
        the descriptions hold the objects they name until the execution
        ends, and a program whose objects lived shorter (finalizers, weak
        references running at other moments) would not be the program
        that failed."""
        session = self.session("replay", schedule=list(schedule))
        try:
            if not session.begin():
                raise RuntimeError("the replay session refused to start")
            try:
                run = self.execute(session, setup, threads, timeout, deadlock_timeout)
            except Stuck:
                return False
            # The invariant runs when ``replay`` would run it: it may be what
            # releases the state (closes connections, for one).
            deadlocked = run.deadlock_detail is not None
            holds = None
            if run.aborted is None and not deadlocked:
                try:
                    holds, _ = self.pool.offload.call(
                        "the invariant", timeout, functools.partial(check_invariant, invariant, run.state)
                    )
                except Stuck:
                    return False
            return bool(run.errors) or holds is False or deadlocked
        finally:
            self.close(session)


@contextlib.contextmanager
def running(
    num_threads: int,
    trace_filter: TraceFilter,
    *,
    detect_io: bool,
    native: bool | None = None,
    virtual_time: bool = True,
) -> Iterator[Machinery]:
    """Everything an entry point needs to run executions of ``num_threads``
    workers, for the duration of the block: the worker pool and the thread for setup() and the invariant,
    the cooperative primitives, the tracer, and with ``detect_io`` the
    Python-level I/O wrappers and (unless ``native`` is False) the native
    events, for which the run-time hooks are installed when the library
    was not preloaded. On the way out the sessions close and everything is
    put back."""
    native = detect_io if native is None else native
    native_hooks = False
    if native:
        from frontrun import _runtime_hooks

        native_hooks = _runtime_hooks.ensure()
    machinery = Machinery(
        num_threads,
        trace_filter,
        detect_io=detect_io,
        native=native,
        native_hooks=native_hooks,
        virtual_time=virtual_time,
    )
    _coop.install()
    _vclock.install()
    _debugger.install()
    _spawn.install()
    try:
        with _Tracing(), _io_detection(detect_io):
            yield machinery
    finally:
        machinery.close_all()
        _spawn.uninstall()
        _debugger.uninstall()
        _vclock.uninstall()
        _coop.uninstall()
        release_pool(machinery.pool)


def _io_detection(enabled: bool) -> contextlib.AbstractContextManager[None]:
    if not enabled:
        return contextlib.nullcontext()
    from frontrun import _io

    return _io.detection(True)
