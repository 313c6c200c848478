"""Systematic exploration of thread interleavings with DPOR.

``explore_dpor`` runs ``setup()`` to build fresh shared state, then the
given callables, one per thread, under frontrun's scheduler: only one of
them runs at a time, and the DPOR engine chooses, at every instruction that
touches shared state, which thread performs the next one. Each execution
that the engine considers different (a different order of conflicting
accesses) is run once; after each, ``invariant(state)`` must hold.

Everything per instruction happens in the native module; the run
machinery (``_run.py``) sets executions up and runs the threads; this file
holds the search loop, the verdict and the public entry points.

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

import functools
import os
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from frontrun import _args, _reproduce, _snapshot, _spawn, _stats
from frontrun._invariant import check_invariant
from frontrun._result import InterleavingResult, ReplayResult
from frontrun._run import Stuck, deadlock_of, running, trace_filter_of
from frontrun._token import threads_recorded

T = TypeVar("T")

__all__ = ["InterleavingResult", "ReplayResult", "explore_dpor", "record_accesses", "replay"]


def _nothing_seen(session: Any, result: InterleavingResult) -> str | None:
    """Why a one-execution pass proves little: the workers' traced code
    touched nothing shared while they ran in untraced modules."""
    if not (result.property_holds and result.exhausted and result.num_explored == 1 and result.untraced_modules):
        return None
    if any(step.accesses for step in session.steps()):
        return None
    modules = ", ".join(result.untraced_modules[:8]) + (", ..." if len(result.untraced_modules) > 8 else "")
    return (
        f"no shared access was seen: the workers ran in untraced modules ({modules}); "
        "if the shared state lives there, name them in trace_packages"
    )


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


def _warn_no_preload(native_hooks: bool) -> None:
    """Once: native I/O is not seen (no preload library, no run-time hooks)."""
    global _preload_warned
    if _preload_warned or native_hooks or _preload_loaded():
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
    virtual_time: bool = True,
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
    ``virtual_time`` runs the workers on a clock of their own: ``time.sleep``
    returns at once (and lets another thread go first), ``time.monotonic``,
    ``time.time`` and ``time.perf_counter`` advance by the sleeps; False
    keeps real time.

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
    _args.check_bool("virtual_time", virtual_time)
    trace_filter = trace_filter_of(trace_packages, skip_packages)
    with running(len(threads), trace_filter, detect_io=detect_io, virtual_time=virtual_time) as machinery:
        if detect_io:
            _warn_no_preload(machinery.native_hooks)
        return explore_with(
            machinery,
            setup,
            threads,
            invariant,
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


def explore_with(
    machinery: Any,
    setup: Callable[[], Any],
    threads: Sequence[Callable[[Any], Any]],
    invariant: Callable[[Any], bool],
    *,
    max_executions: int | None,
    preemption_bound: int | None,
    max_branches: int,
    timeout_per_run: float,
    stop_on_first: bool,
    deadlock_timeout: float,
    reproduce_on_failure: int,
    total_timeout: float | None,
    report_dir: str | None,
) -> InterleavingResult:
    """The search of ``explore_dpor`` (and ``explore_async``) under
    ``machinery``, whose executions run the threads or the tasks: the
    search loop, the replays that check the failure, the verdict. Under
    ``@frontrun.reproduce`` the recorded interleaving runs once instead."""
    forced = _reproduce.forced_token()
    if forced is not None:
        result = _reproduce.run_forced(
            machinery,
            forced,
            setup,
            threads,
            invariant,
            timeout=timeout_per_run,
            deadlock_timeout=deadlock_timeout,
        )
        _stats.record(result)
        return result
    result = InterleavingResult(preemption_bound=preemption_bound)
    failure_report = _search(
        machinery,
        result,
        setup,
        threads,
        invariant,
        max_executions=max_executions,
        preemption_bound=preemption_bound,
        max_branches=max_branches,
        timeout_per_run=timeout_per_run,
        stop_on_first=stop_on_first,
        deadlock_timeout=deadlock_timeout,
        total_timeout=total_timeout,
        report_dir=report_dir,
    )
    if result.counterexample is not None and reproduce_on_failure > 0:
        # Each replay checks that the failure comes back, no more: the
        # explanation was built once, from the failing execution.
        result.reproduction_attempts = reproduce_on_failure
        result.reproduction_successes = sum(
            machinery.reproduces(
                result.counterexample,
                setup,
                threads,
                invariant,
                timeout=timeout_per_run,
                deadlock_timeout=deadlock_timeout,
            )
            for _ in range(reproduce_on_failure)
        )
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
        from frontrun import _report_build

        _report_build.write_into_result(failure_report, result, report_dir)
    _stats.record(result)
    return result


def _search(
    machinery: Any,
    result: InterleavingResult,
    setup: Callable[[], Any],
    threads: Sequence[Callable[[Any], Any]],
    invariant: Callable[[Any], bool],
    *,
    max_executions: int | None,
    preemption_bound: int | None,
    max_branches: int,
    timeout_per_run: float,
    stop_on_first: bool,
    deadlock_timeout: float,
    total_timeout: float | None,
    report_dir: str | None,
) -> Any:
    """The DPOR search of ``explore_dpor``, into ``result``; returns the
    failure report to write when ``report_dir`` is set and a failure was
    found."""
    detect_io = machinery.detect_io

    def new_session() -> Any:
        return machinery.session(
            "dpor",
            entered=result.untraced_modules,
            max_branches=max_branches,
            # max_executions is counted here, so that reaching it can be told
            # apart from exhausting the search (the engine reports both as done).
            max_executions=None,
            preemption_bound=preemption_bound,
        )

    session = new_session()
    # Counters of sessions given up for a restart (see below).
    carried = [0, 0, 0]
    unseen: set[str] = set()
    # (Without the library there are no hints to read.)
    snapshot_generation = _snapshot.reset() if detect_io and machinery.native_hooks else None
    failure_report = None
    progress = _stats.Progress()
    deadline = None if total_timeout is None else time.monotonic() + total_timeout
    offload = machinery.pool.offload
    try:
        while True:
            budget = None
            if deadline is not None and time.monotonic() >= deadline:
                budget = f"total_timeout={total_timeout}"
            elif max_executions is not None and result.num_explored >= max_executions:
                budget = f"max_executions={max_executions}"
            if not session.begin():
                # Nothing left to explore (within the preemption bound).
                result.exhausted = True
                result.complete = session.complete
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
                run = machinery.execute(session, setup, threads, run_timeout, deadlock_timeout)
            except Stuck as stuck:
                # Nothing after this could be checked either.
                result.num_explored += 1
                result.inconclusive.append((result.num_explored, str(stuck)))
                break
            result.num_explored += 1
            progress(result.num_explored)
            if run.wants_spare:
                # A worker started a thread: explore again, with thread ids
                # to spare for the threads the workers start.
                carried[0] += session.native_events
                carried[1] += session.events_lost
                carried[2] += session.native_waits
                unseen.update(session.unseen_statements)
                machinery.close(session)
                machinery.spare_threads = _spawn.SLOTS
                session = new_session()
                continue
            result.notes.extend(n for n in run.notes if n not in result.notes)
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
            deadlock = run.deadlock_detail is not None
            # A deadlocked execution never finished: its state proves nothing.
            if deadlock:
                holds, invariant_error = True, None
            else:
                try:
                    holds, invariant_error = offload.call(
                        "the invariant", timeout_per_run, functools.partial(check_invariant, invariant, run.state)
                    )
                except Stuck as stuck:
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
                    machinery.close(session)
                    session = new_session()
                    snapshot_generation = _snapshot.generation()
                continue
            schedule = list(run.report.schedule)
            result.property_holds = False
            result.failures.append((result.num_explored, schedule))
            if result.counterexample is None:
                result.counterexample = schedule
                result.invariant_error = invariant_error
                result.errors = dict(run.errors)
                result.deadlock = deadlock_of(session, run)
                result.explanation = machinery.explanation(
                    session,
                    run,
                    threads,
                    num_explored=result.num_explored,
                    deadlock=result.deadlock,
                    invariant_failed=not holds,
                    detect_io=detect_io,
                    virtual_time=machinery.virtual_time,
                    token_threads=threads_recorded(schedule, len(threads), session.num_threads),
                )
                if report_dir is not None:
                    from frontrun import _report_build

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
        machinery.close(session)
    return failure_report


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
    virtual_time: bool = True,
) -> ReplayResult[T]:
    """Run ``threads`` over ``setup()``'s state following ``schedule`` exactly.

    ``schedule`` is an ``InterleavingResult.counterexample``, or its printed
    form from an explanation: the replay token (``"fr1...."``) or the
    engine's text (``"v1:0,0,1,1,1,0"``). The result says whether
    ``invariant`` held and what the threads raised. ``detect_io`` must be
    what the exploration that found the schedule used: I/O calls are steps
    of the schedule, and under the preload library it decides which calls
    are scheduling points. So must ``trace_packages`` and ``skip_packages``
    (traced code decides where the scheduling points are), and
    ``virtual_time`` (what the workers' clocks read).
    """
    _args.check_callable("setup", setup)
    threads = _args.check_threads(threads)
    if invariant is not None:
        _args.check_callable("invariant", invariant)
    _args.check_seconds("timeout", timeout)
    _args.check_seconds("deadlock_timeout", deadlock_timeout)
    _args.check_bool("detect_io", detect_io)
    _args.check_bool("virtual_time", virtual_time)
    recorded, sched = (None, schedule)
    if isinstance(schedule, str):
        from frontrun import _token

        recorded, sched = _token.parse(schedule)
    trace_filter = trace_filter_of(trace_packages, skip_packages)
    # A token of a failure in which the workers started threads records
    # the spare thread ids too. (A list does not say how many threads it
    # was recorded with: one that names the threads the workers started
    # replays from its token.)
    spare = _spawn.spare_for(recorded, len(threads))
    if spare is None:
        raise ValueError(f"the schedule was recorded with {recorded} threads, but {len(threads)} were given")
    sched = _args.check_schedule(sched, len(threads) + spare)
    with running(len(threads), trace_filter, detect_io=detect_io, virtual_time=virtual_time) as machinery:
        machinery.spare_threads = spare
        return machinery.replay(sched, setup, threads, invariant, timeout=timeout, deadlock_timeout=deadlock_timeout)


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
    trace_filter = trace_filter_of(trace_packages, skip_packages)
    with running(len(threads), trace_filter, detect_io=detect_io, native=False) as machinery:
        # Thread ids to spare from the start: one run, nothing to explore again.
        machinery.spare_threads = _spawn.SLOTS
        session = machinery.session("serial")
        session.begin()
        run = machinery.execute(session, setup, threads, 30.0, 30.0)
        if run.errors:
            first = next(iter(run.errors.values()))
            raise first
        from frontrun._code import line_of
        from frontrun._explain import label

        out = []
        for step in session.steps():
            line = line_of(step.code, step.offset)
            for a in step.accesses:
                kind = "write" if a.is_write else "read"
                out.append((step.thread, kind, label(session.describe, a.key, step.code, step.offset), line))
        return out
