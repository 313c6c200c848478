"""Systematic exploration of thread interleavings with DPOR.

``explore_dpor`` runs ``setup()`` to build fresh shared state, then the
given callables, one per thread, under frontrun's scheduler: only one of
them runs at a time, and the DPOR engine chooses, at every instruction that
touches shared state, which thread performs the next one. Each execution
that the engine considers different (a different order of conflicting
accesses) is run once; after each, ``invariant(state)`` must hold.

Everything per instruction happens in the native module; this file sets
executions up, runs the threads, and turns results into explanations.

What is seen, and what is not:

- The program under test and the third-party packages it calls are traced,
  not the standard library (unless named in ``trace_packages``) or
  frontrun; ``skip_packages`` leaves packages out (``_tracefilter.py``). A
  stdlib function that mutates shared state from its own Python code is
  invisible; the same mutation done by a C method called from traced code
  (``list.append``, ``dict.update``) is seen.
- Threads started by the workers themselves are not scheduled or traced.
- Locks, conditions, semaphores, events, barriers and queues from
  ``threading`` and ``queue`` are replaced by cooperative versions while an
  exploration runs (``frontrun._coop``): waiting on them parks the thread
  and a state where every thread waits is reported as a deadlock. Objects
  created before (e.g. at import time) are cooperative only if created
  while installed (the pytest plugin installs them before collection);
  other blocking calls stall until ``deadlock_timeout``.
- I/O is seen unless ``detect_io=False``: socket and ``open`` calls of
  the workers from Python (``_io.py``), and under the preload library
  (``LD_PRELOAD``) their C-level file, socket and database traffic, which
  joins their steps (see the native ``native.rs``).

Objects are keyed as explained in the native ``keys.rs``: by their position
in a breadth-first walk of ``setup()``'s state (the same in every
execution), module globals by module name, other objects by the order of
their first access in the execution.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import queue
import sys
import threading
import time
import types
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from frontrun import _args, _coop, _engine, _io, _report_build, _reproduce, _snapshot, _stats, _token
from frontrun._deadlock import Deadlock, build_deadlock, sync_tags
from frontrun._explain import explain, label, thread_name
from frontrun._invariant import check_invariant
from frontrun._opcodes import classify
from frontrun._result import InterleavingResult
from frontrun._state_walk import reachable
from frontrun._tables import ensure_tables
from frontrun._tracefilter import TraceFilter, is_dynamic

T = TypeVar("T")

__all__ = ["InterleavingResult", "ReplayResult", "explore_dpor", "record_accesses", "replay"]

_USE_MONITORING = sys.version_info >= (3, 12)
_JOIN_GRACE = 2.0


# ---------------------------------------------------------------------------
class _CoroutineRefused(TypeError):
    """A callable given to frontrun returned a coroutine: the call did
    nothing yet, and nothing would ever await it."""


def _refuse_coroutine(name: str, value: Any) -> None:
    import inspect

    if inspect.iscoroutine(value):
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
                _Tracing._tool = self._register()
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
            mon = sys.monitoring  # type: ignore[attr-defined]
            mon.set_events(tool, 0)
            mon.register_callback(tool, mon.events.INSTRUCTION, None)
            mon.free_tool_id(tool)
            # Locations answered DISABLE during the exploration start clean.
            mon.restart_events()


def _trace_filter(trace_packages: Iterable[str], skip_packages: Iterable[str]) -> TraceFilter:
    """The caller's patterns plus the session's (pytest options and ini)."""
    own = TraceFilter(trace_packages, skip_packages)
    return TraceFilter(
        own.patterns + _stats.DEFAULTS.trace_packages,
        own.skip_patterns + _stats.DEFAULTS.skip_packages,
    )


def _decider(
    trace_filter: TraceFilter, entered: list[str] | None = None
) -> Callable[[types.CodeType, Any, bool], bool]:
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


def _nothing_seen(session: Any, result: InterleavingResult) -> str | None:
    """Why a one-execution pass proves little: the workers' traced code
    touched nothing shared while they ran in untraced modules."""
    if not (result.property_holds and result.exhausted and result.num_explored == 1 and result.untraced_modules):
        return None
    if any(accesses for _t, _code, _offset, accesses in session.steps()):
        return None
    modules = ", ".join(result.untraced_modules[:8]) + (", ..." if len(result.untraced_modules) > 8 else "")
    return (
        f"no shared access was seen: the workers ran in untraced modules ({modules}); "
        "if the shared state lives there, name them in trace_packages"
    )


# ---------------------------------------------------------------------------
# One execution
# ---------------------------------------------------------------------------


@dataclass
class _Execution:
    state: Any
    report: dict[str, Any]
    errors: dict[int, BaseException] = field(default_factory=dict)
    aborted: str | None = None
    leaked_threads: list[str] = field(default_factory=list)


def _run_worker(session: Any, tid: int, fn: Callable[[Any], Any], state: Any, errors: dict[int, BaseException]) -> None:
    try:
        session.enter(tid)
        _refuse_coroutine(f"threads[{tid}]", fn(state))
    except _engine.ExecutionAborted:
        pass
    except BaseException as exc:
        errors[tid] = exc
    finally:
        if not _is_forked_thread():
            session.leave(tid)


#: In the child of a fork: the thread that forked (the child's first
#: thread), else None.
_forked_thread: int | None = None


def _is_forked_thread() -> bool:
    return _forked_thread is not None and threading.get_ident() == _forked_thread


def _after_fork_in_child() -> None:
    """The child of a ``fork`` (``os.fork``, multiprocessing's fork start
    method) made by a worker runs freely: its one thread is not an explored
    thread. It leaves the scheduler, tracing stops, and when the worker
    function returns in the child, its thread ends (the child then exits
    with status 0, as a forked thread's child does). The parent's pools and
    tracing registration do not exist in the child; they are forgotten."""
    global _forked_thread
    _forked_thread = threading.get_ident()
    _engine.detach_after_fork()
    _Tracing.forget_after_fork()


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
                    _run_worker(*job)
                finally:
                    self.completed += 1
                if _is_forked_thread():
                    return
            except _engine.ExecutionAborted:
                # An interrupt aimed at an abandoned execution arrived late.
                continue

    @property
    def busy(self) -> bool:
        return self.submitted != self.completed

    def submit(self, *job: Any) -> None:
        self.submitted += 1
        self.jobs.put(job)

    def stop(self) -> None:
        self.jobs.put(None)


class _Stuck(Exception):
    """``setup()`` or the invariant did not return within its bound; the
    exploration ends inconclusive with the reason."""


class _Overdue(BaseException):
    """Raised into the main thread by the watchdog (a BaseException, so the
    user's ``except Exception`` does not swallow it)."""


class _Watchdog:
    """Bounds what runs on the calling thread between executions:
    ``setup()``, the invariant. When a bounded call overruns, it notes where
    the thread is and raises ``_Overdue`` in it; the call's ``with`` turns
    that into ``_Stuck``. The calling thread is not traced, so an
    asynchronous exception is safe there; a call blocked inside C gets it
    when the C call returns.

    One thread per exploration, started with its pool and joined by
    ``stop``; it polls, so arming costs a clock read and nothing else. Its
    pause between polls is a wait on a held lock, which ``stop`` releases:
    an exploration does not wait out the last poll when it returns.
    """

    POLL = 0.02

    def __init__(self) -> None:
        self._lock = _coop.original(threading, "Lock")()
        self._deadline: float | None = None
        self._target = 0
        self._what = ""
        self.where: str | None = None
        self._stopping = False
        self._wake = _coop.original(threading, "Lock")()
        self._wake.acquire()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._watch, name="frontrun-watchdog", daemon=True)
        self._thread.start()

    @contextlib.contextmanager
    def bound(self, what: str, seconds: float) -> Any:
        with self._lock:
            self._what, self._target, self.where = what, threading.get_ident(), None
            self._deadline = time.monotonic() + seconds
        try:
            yield
        except _Overdue:
            self._disarm()
            raise _Stuck(f"{what} did not return within {seconds:.1f}s; it was at {self.where}") from None
        finally:
            self._disarm()

    def _disarm(self) -> None:
        with self._lock:
            fired = self.where is not None and self._deadline is not None
            self._deadline = None
        if fired:
            # The call may have ended just as the exception was set: take it
            # here, at the interpreter's next checks. (Clearing it with
            # PyThreadState_SetAsyncExc(id, NULL) leaves 3.11's eval loop
            # flagged, and the next exploration's tracing stalls.)
            try:
                for _ in range(1000):
                    pass
            except _Overdue:
                pass

    def _watch(self) -> None:
        while not self._stopping:
            if self._wake.acquire(timeout=self.POLL):
                return
            with self._lock:
                if self._deadline is None or time.monotonic() < self._deadline or self.where is not None:
                    continue
                frame = sys._current_frames().get(self._target)
                self.where = _frame_site(frame)
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self._target), ctypes.py_object(_Overdue))

    def stop(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        self._wake.release()
        if self._thread is not None:
            self._thread.join()


def _frame_site(frame: Any) -> str:
    """The innermost frame outside frontrun, as ``file:line in function``."""
    here = os.path.dirname(__file__)
    while frame is not None and os.path.dirname(frame.f_code.co_filename) == here:
        frame = frame.f_back
    if frame is None:
        return "an unknown place"
    return f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}"


class _WorkerPool:
    def __init__(self, size: int) -> None:
        self.threads = [_PooledThread(i) for i in range(size)]
        self.watchdog = _Watchdog()
        self.watchdog.start()
        #: Threads taken out of the pool while still busy with an abandoned
        #: execution, until they end.
        self.retired: list[threading.Thread] = []

    def grow(self, size: int) -> None:
        while len(self.threads) < size:
            self.threads.append(_PooledThread(len(self.threads)))

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
        self.watchdog.stop()


# One pool per exploration (and its replays), stopped when it returns: no
# thread frontrun started outlives the call, so a test suite's thread-leak
# check holds. Keeping idle pools between explorations saved about 0.3 ms
# per exploration (2 threads), measured; not worth threads left running.
_lent = threading.local()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _acquire_pool(size: int) -> _WorkerPool:
    """A pool of ``size`` threads: the one ``explore_dpor`` lends its own
    replays of a failure, else a new one."""
    pool = getattr(_lent, "pool", None)
    if pool is not None:
        pool.grow(size)
        return pool
    return _WorkerPool(size)


def _release_pool(pool: _WorkerPool) -> None:
    # Workers of a finished execution are only returning to their loop.
    if not pool.wait_idle(0.5):
        pool.replace_stuck()
    if pool is not getattr(_lent, "pool", None):
        pool.close()


# An asynchronous exception that lands in a thread blocked in C makes 3.11's
# tracing loop in the next execution; there a thread stuck in untraced code
# is left to end by itself (and reported), never interrupted.
_ASYNC_INTERRUPT_IS_SAFE = sys.version_info[:2] != (3, 11)


def _interrupt(thread: threading.Thread) -> None:
    """Best effort: raise ExecutionAborted in a thread stuck in Python code."""
    if thread.ident is not None and thread.is_alive():
        ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(thread.ident), ctypes.py_object(_engine.ExecutionAborted)
        )


def _where(code: Any, offset: int | None) -> str:
    if code is None or offset is None:
        return "before its first traced instruction"
    line = next((ln for s, e, ln in code.co_lines() if s <= offset < e and ln is not None), 0)
    return f"{code.co_filename}:{line} in {code.co_name}"


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
    pool: _WorkerPool,
    setup: Callable[[], Any],
    threads: Sequence[Callable[[Any], Any]],
    timeout: float,
    deadlock_timeout: float,
) -> _Execution:
    try:
        with pool.watchdog.bound("setup()", timeout):
            state = setup()
        _refuse_coroutine("setup", state)
    except BaseException:
        session.abort("setup() raised")
        session.end()
        raise
    session.prenumber(reachable(state, upgrade_locks=_coop.installed()))
    errors: dict[int, BaseException] = {}
    with _no_collection():
        session.kick()
        for i, fn in enumerate(threads):
            pool.threads[i].submit(session, i, fn, state, errors)
        stuck = session.wait(timeout, deadlock_timeout)
    refused = next((e for e in errors.values() if isinstance(e, _CoroutineRefused)), None)
    if refused is not None:
        session.end()
        raise refused
    aborted = None
    leaked: list[str] = []
    if stuck is not None:
        why, tid, code, offset = stuck
        who = f"thread {tid}" if tid is not None else "no thread"
        aborted = f"{why}; {who} held the turn, last seen at {_where(code, offset)}"
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
        if thread.is_alive() and _ASYNC_INTERRUPT_IS_SAFE:
            # Still running, in code the tracer does not reach.
            _interrupt(thread)
    pool.retired = [t for t in pool.retired if t.is_alive()]
    engine_reason = report["engine_aborted"]
    if engine_reason and not engine_reason.startswith("end_execution was called"):
        # The engine cut the execution short (max_branches, sleep-set
        # blocked, ...): its reason says more than "no thread can take the
        # next step". (When we abandoned the execution ourselves, the engine
        # only says it ended early.)
        aborted = engine_reason
    elif aborted is None and report["aborted"]:
        aborted = report["aborted"]
    return _Execution(state, report, errors, aborted, leaked)


def _deadlock_of(session: Any, run: _Execution) -> Deadlock | None:
    """The deadlock of the execution just run (read it before the next
    execution begins: keys are per execution)."""
    return build_deadlock(run.report.get("deadlock_detail"), session.describe, run.state)


def _sync_tags(session: Any, run: _Execution) -> dict[int, list[str]]:
    """Synchronisation operations of the execution just run, per step."""
    return sync_tags(session.sync_steps(), session.describe, run.state)


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------

_preload_warned = False


def _preload_loaded() -> bool:
    from frontrun._paths import PRELOAD_LIBRARY_NAME

    if PRELOAD_LIBRARY_NAME in os.environ.get("LD_PRELOAD", ""):
        return True
    try:
        with open("/proc/self/maps") as maps:
            return any(PRELOAD_LIBRARY_NAME in line for line in maps)
    except OSError:
        return False


def _warn_no_preload() -> None:
    global _preload_warned
    from frontrun import _runtime_hooks

    if _preload_warned or _preload_loaded() or _runtime_hooks.ensure():
        return
    from frontrun._notices import FrontrunWarning

    text = (
        "detect_io=True but libfrontrun_io.so is not loaded, so I/O done by native code (C extensions, libc) "
        "is not seen. Run under LD_PRELOAD=$(frontrun --preload-path) to enable it, or pass detect_io=False "
        "to silence this warning."
    )
    if _stats.notice(text):
        return  # said once in the pytest session's summary
    _preload_warned = True
    warnings.warn(text, FrontrunWarning, stacklevel=3)


def explore_dpor(
    setup: Callable[[], T],
    threads: Sequence[Callable[[T], Any]],
    invariant: Callable[[T], bool],
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
    """Explore the distinct interleavings of ``threads`` over ``setup()``'s state.

    Each thread callable receives the state; after all of them finish,
    ``invariant(state)`` must be true. Returns an :class:`InterleavingResult`;
    when the invariant fails (or a thread raises), it holds the failing
    schedule, an explanation of the conflicting accesses, and how often
    replaying the schedule reproduced the failure.

    ``preemption_bound=None`` explores every Mazurkiewicz trace (full DPOR);
    an integer bounds the preemptions per execution. ``max_branches`` caps the
    scheduling points of one execution. The program and the third-party
    packages it calls are traced, the standard library is not:
    ``trace_packages`` holds fnmatch patterns of module names to trace as
    well (``"json.*"``: a package and its submodules), ``skip_packages``
    patterns of modules to leave out; ``trace_packages`` wins where both
    match.
    ``detect_io`` reads the native events of the preload library when it is
    loaded (and warns once when it is not); False ignores them.
    ``report_dir`` names a directory where a failure writes an HTML report.

    Under ``@frontrun.reproduce(token)`` the search is skipped and the
    recorded interleaving runs once instead.
    """
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
    )
    trace_filter = _trace_filter(trace_packages, skip_packages)
    if detect_io:
        _warn_no_preload()
    forced = _reproduce.forced_token()
    if forced is not None:
        result = _reproduce.run_forced(
            forced,
            setup,
            threads,
            invariant,
            timeout=timeout_per_run,
            deadlock_timeout=deadlock_timeout,
            trace_packages=trace_filter.patterns,
            skip_packages=trace_filter.skip_patterns,
            detect_io=detect_io,
        )
        _stats.record(result)
        return result

    result = InterleavingResult(preemption_bound=preemption_bound)

    def new_session() -> Any:
        return _engine.Session(
            len(threads),
            _decider(trace_filter, result.untraced_modules),
            classify,
            mode="dpor",
            max_branches=max_branches,
            # max_executions is counted here, so that reaching it can be told
            # apart from exhausting the search (the engine reports both as done).
            max_executions=None,
            preemption_bound=preemption_bound,
            native=detect_io,
        )

    session = new_session()
    # Counters of sessions given up for a restart (see below).
    carried = [0, 0, 0]
    unseen: set[str] = set()
    snapshot_generation = _snapshot.reset() if detect_io else None
    failure_report = None
    progress = _stats.Progress()
    deadline = None if total_timeout is None else time.monotonic() + total_timeout
    pool = _acquire_pool(len(threads))
    _coop.install()
    try:
        with _Tracing(), _io.detection(detect_io):
            while True:
                budget = None
                if deadline is not None and time.monotonic() >= deadline:
                    budget = f"total_timeout={total_timeout}"
                elif max_executions is not None and result.num_explored >= max_executions:
                    budget = f"max_executions={max_executions}"
                if not session.begin():
                    # Nothing left to explore (within the preemption bound).
                    result.exhausted = True
                    break
                if budget is not None:
                    # More was left to explore: say what stopped the search.
                    session.abort(f"the search was stopped by {budget}")
                    session.end()
                    result.stopped_by = budget
                    break
                run_timeout = timeout_per_run
                if deadline is not None:
                    run_timeout = max(min(timeout_per_run, deadline - time.monotonic()), 0.001)
                try:
                    run = _run_one(session, pool, setup, threads, run_timeout, deadlock_timeout)
                except _Stuck as stuck:
                    # Nothing after this could be checked either.
                    result.num_explored += 1
                    result.inconclusive.append((result.num_explored, str(stuck)))
                    break
                result.num_explored += 1
                progress(result.num_explored)
                out_of_time = deadline is not None and time.monotonic() >= deadline
                if run.aborted is not None and run_timeout < timeout_per_run and out_of_time:
                    # total_timeout ran out inside this execution: the budget
                    # the caller set, not an execution frontrun failed to check.
                    result.stopped_by = f"total_timeout={total_timeout}"
                    result.truncated.append((result.num_explored, f"stopped by total_timeout: {run.aborted}"))
                    break
                if run.aborted is not None and "max_branches" in run.aborted:
                    # A budget the caller set: said, not a failure to check.
                    # What lies beyond the cut was not explored either.
                    result.truncated.append((result.num_explored, run.aborted))
                    result.stopped_by = result.stopped_by or f"max_branches={max_branches}"
                    continue
                if run.aborted is not None:
                    result.inconclusive.append((result.num_explored, run.aborted))
                    if run.leaked_threads:
                        result.inconclusive.append(
                            (result.num_explored, f"threads still running after the execution: {run.leaked_threads}")
                        )
                    continue
                deadlock = run.report.get("deadlock")
                # A deadlocked execution never finished: its state proves nothing.
                if deadlock:
                    holds, invariant_error = True, None
                else:
                    try:
                        with pool.watchdog.bound("the invariant", timeout_per_run):
                            holds, invariant_error = check_invariant(invariant, run.state)
                    except _Stuck as stuck:
                        result.inconclusive.append((result.num_explored, str(stuck)))
                        break
                if holds and not run.errors and not deadlock:
                    if snapshot_generation is not None and _snapshot.generation() != snapshot_generation:
                        # A transaction read a table its snapshot was not
                        # ordered against: what was explored so far missed
                        # orders. Start again with the table known.
                        carried[0] += session.native_events
                        carried[1] += session.events_lost
                        carried[2] += session.native_waits
                        unseen.update(session.unseen_statements)
                        session.close()
                        session = new_session()
                        snapshot_generation = _snapshot.generation()
                    continue
                schedule = list(run.report["schedule"])
                result.property_holds = False
                result.failures.append((result.num_explored, schedule))
                if result.counterexample is None:
                    result.counterexample = schedule
                    result.invariant_error = invariant_error
                    result.errors = dict(run.errors)
                    result.deadlock = _deadlock_of(session, run)
                    result.explanation = explain(
                        steps=session.steps(),
                        describe=session.describe,
                        num_explored=result.num_explored,
                        schedule=schedule,
                        errors=run.errors,
                        deadlock=result.deadlock,
                        invariant_failed=not holds,
                        sync_tags=_sync_tags(session, run),
                        thread_names=[thread_name(fn) for fn in threads],
                        native_steps=session.native_steps(),
                        detect_io=detect_io,
                    )
                    if report_dir is not None:
                        failure_report = _report_build.from_session(
                            session, run.errors, schedule, threads, invariant, result
                        )
                if stop_on_first:
                    break
        result.untraced_modules.sort()
        note = _nothing_seen(session, result)
        if note is not None:
            result.notes.append(note)
    finally:
        _settle(result)
        progress.close(result.scope)
        result.native_events = carried[0] + session.native_events
        result.events_lost = carried[1] + session.events_lost
        result.native_waits = carried[2] + session.native_waits
        result.unseen_statements = sorted(unseen.union(session.unseen_statements))
        session.close()
        _coop.uninstall()
        if result.counterexample is None or reproduce_on_failure == 0:
            _release_pool(pool)

    if result.counterexample is not None and reproduce_on_failure > 0:
        ok = 0
        _lent.pool = pool  # the replays reuse this exploration's threads
        try:
            for _ in range(reproduce_on_failure):
                rep = replay(
                    result.counterexample,
                    setup,
                    threads,
                    invariant,
                    timeout=timeout_per_run,
                    deadlock_timeout=deadlock_timeout,
                    trace_packages=trace_filter.patterns,
                    skip_packages=trace_filter.skip_patterns,
                    detect_io=detect_io,
                )
                if rep.failed:
                    ok += 1
        finally:
            _lent.pool = None
            _release_pool(pool)
        result.reproduction_attempts = reproduce_on_failure
        result.reproduction_successes = ok
    if result.explanation is None:
        # No failure: the explanation is the verdict and what it covers.
        scope = result.scope
        result.explanation = result.inconclusive_report() if result.inconclusive else f"{scope[0].upper()}{scope[1:]}."
    else:
        for number, why in result.inconclusive:
            result.explanation += f"\nExecution {number} was inconclusive: {why}"
        if result.reproduction_attempts:
            result.explanation += f"\nReproduced {result.reproduction_successes}/{result.reproduction_attempts} times."
    for unseen_server in result.unseen_statements:
        result.explanation += (
            f"\nStatements to {unseen_server} were not seen; they counted as writes to the whole server."
        )
    if failure_report is not None and report_dir is not None:
        _report_build.write_into_result(failure_report, result, report_dir)
    _stats.record(result)
    return result


def _settle(result: InterleavingResult) -> None:
    """Derive the verdict fields once the search is over: a result with
    executions given up proves nothing, so it neither holds nor is
    exhausted."""
    if result.failures:
        result.property_holds = False
    elif result.inconclusive:
        result.property_holds = None
    if result.inconclusive or result.stopped_by is not None:
        result.exhausted = False


@dataclass
class ReplayResult(Generic[T]):
    """One execution run under a fixed schedule."""

    state: T
    schedule: list[int]
    #: ``invariant(state)``, or None when no invariant was given or the run
    #: was abandoned.
    invariant_holds: bool | None
    errors: dict[int, BaseException]
    aborted: str | None
    #: Explanation of the conflicting accesses when the run failed.
    explanation: str | None = None
    #: The deadlock the run ended in, if it did.
    deadlock: Deadlock | None = None
    #: The ``AssertionError`` the invariant raised, when it failed by raising.
    invariant_error: AssertionError | None = None

    @property
    def failed(self) -> bool:
        return bool(self.errors) or self.invariant_holds is False or self.deadlock is not None


def replay(
    schedule: Sequence[int] | str,
    setup: Callable[[], T],
    threads: Sequence[Callable[[T], Any]],
    invariant: Callable[[T], bool] | None = None,
    *,
    timeout: float = 5.0,
    deadlock_timeout: float = 5.0,
    trace_packages: Iterable[str] = (),
    skip_packages: Iterable[str] = (),
    detect_io: bool = True,
) -> ReplayResult[T]:
    """Run ``threads`` over ``setup()``'s state following ``schedule`` exactly.

    ``schedule`` is an ``InterleavingResult.counterexample``, or its printed
    form from an explanation: the replay token (``"fr1...."``) or the
    engine's text (``"v1:0,0,1,1,1,0"``). The result says whether
    ``invariant`` held and what the threads raised. ``detect_io`` must be
    what the exploration that found the schedule used: I/O calls are steps
    of the schedule, and under the preload library it decides which calls
    are scheduling points. So must ``trace_packages`` and ``skip_packages``
    (traced code decides where the scheduling points are).
    """
    _args.check_callable("setup", setup)
    threads = _args.check_threads(threads)
    if invariant is not None:
        _args.check_callable("invariant", invariant)
    _args.check_seconds("timeout", timeout)
    _args.check_seconds("deadlock_timeout", deadlock_timeout)
    _args.check_bool("detect_io", detect_io)
    recorded, sched = _token.parse(schedule) if isinstance(schedule, str) else (None, schedule)
    trace_filter = _trace_filter(trace_packages, skip_packages)
    if recorded is not None and recorded != len(threads):
        raise ValueError(f"the schedule was recorded with {recorded} threads, but {len(threads)} were given")
    sched = _args.check_schedule(sched, len(threads))
    if detect_io:
        from frontrun import _runtime_hooks

        _runtime_hooks.ensure()  # the native steps of the schedule need the hooks
    session = _engine.Session(
        len(threads),
        _decider(trace_filter),
        classify,
        mode="replay",
        schedule=sched,
        native=detect_io,
    )
    pool = _acquire_pool(len(threads))
    _coop.install()
    try:
        with _Tracing(), _io.detection(detect_io):
            if not session.begin():
                raise RuntimeError("the replay session refused to start")
            try:
                run = _run_one(session, pool, setup, threads, timeout, deadlock_timeout)
            except _Stuck as stuck:
                return ReplayResult(None, [], None, {}, str(stuck))  # type: ignore[arg-type]
            deadlock = _deadlock_of(session, run)
            holds, invariant_error = None, None
            if invariant is not None and run.aborted is None and deadlock is None:
                holds, invariant_error = check_invariant(invariant, run.state)
            text = None
            if run.errors or holds is False or deadlock is not None:
                text = explain(
                    steps=session.steps(),
                    describe=session.describe,
                    num_explored=1,
                    schedule=run.report["schedule"],
                    errors=run.errors,
                    deadlock=deadlock,
                    invariant_failed=holds is False,
                    sync_tags=_sync_tags(session, run),
                    thread_names=[thread_name(fn) for fn in threads],
                    native_steps=session.native_steps(),
                    detect_io=detect_io,
                )
    finally:
        _release_pool(pool)
        session.close()
        _coop.uninstall()
    return ReplayResult(
        run.state,
        list(run.report["schedule"]),
        holds,
        run.errors,
        run.aborted,
        text,
        deadlock=deadlock,
        invariant_error=invariant_error,
    )


def record_accesses(
    setup: Callable[[], T],
    threads: Sequence[Callable[[T], Any]],
    *,
    trace_packages: Iterable[str] = (),
    skip_packages: Iterable[str] = (),
    detect_io: bool = True,
) -> list[tuple[int, str, str, int]]:
    """Run ``threads`` one after the other and return the accesses they made.

    Each entry is ``(thread, "read" | "write", location, line)``, in order. A
    diagnostic (and test) aid: it shows what the tracer sees, with no search.
    With ``detect_io``, I/O appears as accesses to its resource
    (``file:/tmp/x``, ``socket:127.0.0.1:8080``).
    """
    _args.check_callable("setup", setup)
    threads = _args.check_threads(threads)
    _args.check_bool("detect_io", detect_io)
    trace_filter = _trace_filter(trace_packages, skip_packages)
    session = _engine.Session(len(threads), _decider(trace_filter), classify, mode="serial")
    pool = _acquire_pool(len(threads))
    _coop.install()
    try:
        with _Tracing(), _io.detection(detect_io):
            session.begin()
            run = _run_one(session, pool, setup, threads, 30.0, 30.0)
            if run.errors:
                first = next(iter(run.errors.values()))
                raise first
            out = []
            for thread, code, offset, accs in session.steps():
                line = 0
                if code is not None:
                    line = next((ln for s, e, ln in code.co_lines() if s <= offset < e and ln is not None), 0)
                for key, write in accs:
                    out.append((thread, "write" if write else "read", label(session.describe, key, code, offset), line))
            return out
    finally:
        _release_pool(pool)
        session.close()
        _coop.uninstall()
