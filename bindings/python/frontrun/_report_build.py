"""From a failing execution to a :class:`~frontrun._report_model.FailureReport`.

The explorer calls :func:`build` while the session still holds the failing
execution's steps (code objects, offsets, access keys that only the session
can name), so everything the page needs is turned into plain strings here,
once. The steps shown are the ones that touch a location two threads
touched with at least one write (as in the text explanation) or that did
native I/O; each conflict joins an access to the latest earlier access of
the same location by another thread, when one of the two writes. The
C-level accesses the preload library attributed to a step (when the session
has them) are shown on the step's lane. Arrows that the others already imply
are left out.
"""

from __future__ import annotations

import dataclasses
import os
import types
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from frontrun._code import line_of
from frontrun._display import resource_name, source_path
from frontrun._explain import (
    _SEVERITY,
    ASYNCIO_BOOKKEEPING,
    Describe,
    NativeRecord,
    StepRecord,
    classify_locations,
    conflicting_keys,
    label,
    thread_name,
)
from frontrun._explain import Access as ExplainAccess
from frontrun._report_model import Access, Conflict, FailureReport, NativeEvent, Step, Thread
from frontrun._token import encode, threads_recorded

_IO_PREFIXES = ("socket:", "file:", "db:", "unix:")


def _source_of(code: types.CodeType | None, offset: int) -> tuple[str, int, str, str]:
    import linecache

    if code is None:
        return ("", 0, "", "")
    line = line_of(code, offset)
    source = linecache.getline(code.co_filename, line).strip() if line else ""
    return (code.co_filename, line, source, code.co_name)


def _native_events(native: Sequence[NativeRecord]) -> tuple[NativeEvent, ...]:
    """The session's C-level accesses of one step, ``(libc call, resource,
    statement or "", is_write)`` each, as the page shows them."""
    # Several resources can have one name (a table and its commit order):
    # each event is shown once.
    events = (
        NativeEvent(str(call), resource_name(str(resource)), str(statement)) for call, resource, statement, _ in native
    )
    return tuple(dict.fromkeys(events))


def _title(
    errors: dict[int, BaseException], deadlock: Sequence[int] | None, invariant: Any, invariant_error: Any
) -> str:
    if deadlock:
        describe = getattr(deadlock, "describe", None)
        if callable(describe):
            return f"Deadlock: {describe()}".splitlines()[0]
        return "Deadlock: " + " -> ".join(f"thread {t}" for t in [*deadlock, deadlock[0]])
    if errors:
        tid, exc = min(errors.items())
        return f"Thread {tid} raised {type(exc).__name__}: {exc}".splitlines()[0]
    if invariant_error is not None:
        return f"{type(invariant_error).__name__}: {invariant_error}".splitlines()[0]
    name = getattr(invariant, "__qualname__", "") or ""
    if name and "<lambda>" not in name:
        return f"Invariant {name} violated"
    return "Invariant violated"


def build(
    *,
    steps: Sequence[StepRecord],
    describe: Describe,
    schedule: Sequence[int],
    thread_names: Sequence[str],
    replay: str,
    num_explored: int,
    errors: dict[int, BaseException],
    deadlock: Sequence[int] | None,
    invariant: Callable[..., Any] | None,
    invariant_error: BaseException | None = None,
    native_steps: Sequence[Sequence[NativeRecord]] = (),
    test: str = "",
) -> FailureReport:
    accesses: list[ExplainAccess] = []
    for i, (thread, code, offset, accs, *_rest) in enumerate(steps):
        for key, write in accs:
            accesses.append(ExplainAccess(i, thread, key, write, code, offset))
    keys = conflicting_keys(accesses)
    labels: dict[int, str] = {}
    io_keys: set[int] = set()
    for a in accesses:
        if a.key not in labels:
            described = describe(a.key)
            if described is not None and described[1] == "io":
                # A native resource: the session names it (socket, file, row).
                labels[a.key] = resource_name(str(described[2]))
                io_keys.add(a.key)
            else:
                labels[a.key] = label(describe, a.key, a.code, a.offset)
                if labels[a.key].startswith(_IO_PREFIXES):
                    io_keys.add(a.key)

    # Conflicts are drawn per location as the page names it: several keys
    # can share a name (a connection's traffic, a database row), and a step
    # that read one and wrote another of them wrote that location.
    touches: dict[str, list[tuple[int, int, bool]]] = {}
    for a in accesses:
        if a.key not in keys:
            continue
        seq = touches.setdefault(labels[a.key], [])
        if seq and seq[-1][0] == a.step:
            seq[-1] = (a.step, a.thread, seq[-1][2] or a.write)
        else:
            seq.append((a.step, a.thread, a.write))
    conflicts: list[Conflict] = []
    for name, seq in sorted(touches.items(), key=lambda item: item[1][0][0]):
        # An arrow a -> b is left out when an arrow a' -> b' between the
        # same two threads, with a <= a' and b' before b, already orders
        # them (each thread runs its steps in order).
        latest: dict[tuple[int, int], int] = {}
        for n, (step, thread, write) in enumerate(seq):
            earlier = next((e for e in reversed(seq[:n]) if e[1] != thread and (e[2] or write)), None)
            if earlier is None or earlier[0] <= latest.get((earlier[1], thread), -1):
                continue
            latest[(earlier[1], thread)] = earlier[0]
            kind = "write-write" if earlier[2] and write else ("read-write" if write else "write-read")
            conflicts.append(Conflict(earlier[0], step, name, kind))

    shown: list[Step] = []
    endpoints = {c.first for c in conflicts} | {c.second for c in conflicts}
    for i, record in enumerate(steps):
        thread, code, offset, accs = record[0], record[1], record[2], record[3]
        natives = _native_events(native_steps[i]) if i < len(native_steps) else ()
        if i not in endpoints and not natives and not any(k in keys for k, _ in accs):
            continue
        file, line, source, function = _source_of(code, offset)
        # One database row can stand for several keys with the same name:
        # show it once, as a write if any of them was written.
        merged: dict[str, tuple[bool, bool]] = {}
        for k, w in accs:
            written, io = merged.get(labels[k], (False, False))
            merged[labels[k]] = (written or w, io or k in io_keys)
        step_accesses = tuple(Access("write" if w else "read", name, is_io=io) for name, (w, io) in merged.items())
        shown.append(Step(i, thread, file, line, source, step_accesses, natives, function, source_path(file)))

    if keys:
        found = classify_locations(keys, accesses, describe, labels.__getitem__)
        # The most telling kind of race names the page (the first location
        # of that kind). asyncio's bookkeeping of tasks and futures (a task
        # awaiting another reads its state) does not, when a race of the
        # program is there too.
        candidates = [c for c in found if not ASYNCIO_BOOKKEEPING.fullmatch(c[0])] or found
        name, kind, _ = min(candidates, key=lambda c: _SEVERITY.index(c[1]) if c[1] in _SEVERITY else len(_SEVERITY))
        classification = f"{kind} on {name}"
    else:
        classification = "no shared location was written by one thread and touched by another"

    num_threads = max(len(thread_names), max(schedule, default=-1) + 1)
    threads = tuple(Thread(t, thread_names[t] if t < len(thread_names) else f"thread {t}") for t in range(num_threads))
    report = FailureReport(
        title=_title(errors, deadlock, invariant, invariant_error),
        classification=classification,
        replay=replay,
        threads=threads,
        steps=tuple(shown),
        conflicts=tuple(conflicts),
        executions=num_explored,
        schedule=tuple(schedule),
        test=test,
    )
    report.validate()
    return report


def from_session(
    session: Any,
    errors: dict[int, BaseException],
    schedule: list[int],
    threads: Sequence[Callable[..., Any]],
    invariant: Callable[..., Any],
    result: Any,
) -> FailureReport:
    """The report of the execution ``session`` just ran (read before the
    next execution begins), for an exploration whose ``result`` so far
    holds it as the counterexample."""
    token = encode(schedule, threads_recorded(schedule, len(threads), session.num_threads))
    return build(
        steps=session.steps(),
        describe=session.describe,
        schedule=schedule,
        thread_names=[thread_name(fn) for fn in threads],
        replay=f'@frontrun.reproduce("{token}")',
        num_explored=result.num_explored,
        errors=errors,
        deadlock=result.deadlock,
        invariant=invariant,
        invariant_error=result.invariant_error,
        native_steps=session.native_steps() if hasattr(session, "native_steps") else (),
        test=current_test(),
    )


def current_test() -> str:
    """The node id of the pytest test running now (``tests/test_x.py::test_y``),
    or "" outside a test; read from the variable pytest sets for every test
    phase, so it is right under pytest-xdist and without the plugin."""
    running = os.environ.get("PYTEST_CURRENT_TEST", "")
    # "<node id> (setup)", "(call)" or "(teardown)"
    return running.rsplit(" (", 1)[0] if running.endswith(")") else running


def write(report: FailureReport, result: Any, directory: str | os.PathLike[str]) -> Path:
    """Render ``report`` into ``directory`` with the exploration's final
    explanation and lost-event count; returns the page's path."""
    from frontrun._report_html import write_report

    report = dataclasses.replace(report, explanation=result.explanation or "", events_lost=result.events_lost)
    return Path(write_report(report, directory))


def write_into_result(report: FailureReport, result: Any, directory: str | os.PathLike[str]) -> None:
    """Write the page and name it at the end of ``result.explanation``.

    The directory was checked before the exploration began, but it can stop
    being writable while the search runs (removed, disk full). The race
    found is worth more than its page: then the result is kept, the
    explanation says why there is no page, and a ``RuntimeWarning`` is
    issued.
    """
    import warnings

    try:
        result.report_path = str(write(report, result, directory))
    except OSError as exc:
        why = f"the HTML report could not be written to {os.fspath(directory)}: {exc}"
        result.explanation = f"{result.explanation}\nNo HTML report: {why}"
        warnings.warn(f"frontrun: {why}", RuntimeWarning, stacklevel=3)
        return
    result.explanation = f"{result.explanation}\nHTML report: {result.report_path}"
