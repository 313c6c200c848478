"""Checks of the arguments the public entry points take.

A bad value must fail at once, as an ordinary ``TypeError`` or
``ValueError`` whose message names the parameter and says what is wanted,
instead of surfacing later as an overflow in the native module, a panic,
a search that silently traces nothing, or an exploration that runs for an
hour and then cannot write its report. ``tests/reliability/`` runs a table
of bad values against these checks; a new parameter gets its rows there.
"""

from __future__ import annotations

import inspect
import math
import os
from collections.abc import Callable, Sequence
from typing import Any

#: Longest time bound accepted, in seconds (one year). Longer ones would
#: overflow the native clocks; ``None`` (where allowed) means no bound.
MAX_SECONDS = 365 * 24 * 3600
#: The native counters are unsigned 64-bit (the preemption bound 32-bit).
MAX_U64 = 2**64 - 1
MAX_U32 = 2**32 - 1


def check_callable(name: str, value: Any, *, coroutines: bool = False) -> None:
    """``coroutines``: coroutine functions are accepted (``explore_async``)."""
    if not callable(value):
        raise TypeError(f"{name} must be callable, got {type(value).__name__}")
    if not coroutines and _is_async(value):
        raise TypeError(
            f"{name} is a coroutine function ({_qualname(value)}); explore_dpor runs threads, and would never "
            "await it. Explore asyncio tasks with frontrun.explore_async (docs/async.md)"
        )


def _is_async(fn: Any) -> bool:
    target = getattr(fn, "func", fn)  # functools.partial
    call = type(target).__call__ if not inspect.isroutine(target) else None
    return inspect.iscoroutinefunction(target) or (call is not None and inspect.iscoroutinefunction(call))


def _qualname(fn: Any) -> str:
    return getattr(fn, "__qualname__", None) or type(fn).__name__


def check_threads(threads: Any, *, coroutines: bool = False) -> list[Callable[..., Any]]:
    """``threads`` as a list. Only sequences are accepted: thread numbers,
    schedules and replay tokens follow the order of ``threads``, and the
    order of a set (or of whatever a generator happens to yield) is not the
    same in every run."""
    if isinstance(threads, (str, bytes)) or not isinstance(threads, Sequence):
        raise TypeError(
            f"threads must be a list or tuple of callables, got {type(threads).__name__} "
            "(a sequence: its order numbers the threads in schedules and replay tokens)"
        )
    threads = list(threads)
    if not threads:
        raise ValueError("threads must contain at least one callable")
    for i, fn in enumerate(threads):
        check_callable(f"threads[{i}]", fn, coroutines=coroutines)
    return threads


def check_int(name: str, value: Any, *, minimum: int, maximum: int = MAX_U64, optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int{' or None' if optional else ''}, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if value > maximum:
        unbounded = " (None means no limit)" if optional else ""
        raise ValueError(f"{name} must be at most {maximum}{unbounded}, got {value}")


def check_seconds(name: str, value: Any, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, got {type(value).__name__}")
    if math.isnan(value) or not value > 0:
        raise ValueError(f"{name} must be > 0 seconds, got {value}")
    if value > MAX_SECONDS:
        unbounded = " (None means no limit)" if optional else ""
        raise ValueError(f"{name} must be at most {MAX_SECONDS} seconds (one year){unbounded}, got {value}")


def check_bool(name: str, value: Any) -> None:
    # A string such as "no" is true: accepting it would do the opposite of
    # what was asked.
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")


def check_report_dir(value: Any) -> str | None:
    """The report directory as a string, after making sure a report can be
    written there: the directory is only needed once a failure is found,
    which can be hours later, and the failure must not be lost then."""
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"report_dir must be a directory path, got {type(value).__name__}")
    path = os.fspath(value)
    if not isinstance(path, str):
        raise TypeError(f"report_dir must be a str path, got {type(path).__name__}")
    problem = writable_directory_problem(path)
    if problem is not None:
        raise ValueError(f"report_dir {path!r}: {problem}")
    return path


def writable_directory_problem(path: str) -> str | None:
    """Why no report could be written under ``path`` (created if missing),
    or None. Tried for real, with a directory made and removed again:
    permission bits do not tell (root ignores them, a read-only mount does
    not)."""
    if not path:
        return "an empty path names no directory"
    existing = os.path.abspath(path)
    while not os.path.exists(existing):
        parent = os.path.dirname(existing)
        if parent == existing:
            break
        existing = parent
    if not os.path.isdir(existing):
        return f"{existing} is not a directory"
    import tempfile  # only with a report directory

    try:
        probe = tempfile.mkdtemp(prefix=".frontrun-check-", dir=existing)
    except OSError as exc:
        return f"cannot create a directory in {existing}: {exc.strerror or exc}"
    os.rmdir(probe)
    return None


def check_schedule(schedule: Any, num_threads: int) -> list[int]:
    """A schedule to replay: a non-empty list of thread indexes. An empty
    one would constrain nothing and replay some arbitrary interleaving."""
    if isinstance(schedule, (str, bytes)) or not isinstance(schedule, Sequence):
        raise TypeError(
            f"schedule must be a replay token (str) or a list of thread indexes, got {type(schedule).__name__}"
        )
    steps = list(schedule)
    if not steps:
        # It would constrain nothing: some arbitrary interleaving would run.
        raise ValueError("schedule is empty; pass the counterexample or the replay token of a failure")
    for i, t in enumerate(steps):
        if isinstance(t, bool) or not isinstance(t, int) or not 0 <= t < num_threads:
            raise ValueError(f"schedule[{i}] = {t!r} is not a thread index below {num_threads}")
    return steps


def check_explore(
    *,
    setup: Any,
    threads: Any,
    invariant: Any,
    max_executions: Any,
    preemption_bound: Any,
    max_branches: Any,
    timeout_per_run: Any,
    stop_on_first: Any,
    detect_io: Any,
    deadlock_timeout: Any,
    reproduce_on_failure: Any,
    total_timeout: Any,
    report_dir: Any,
    coroutines: bool = False,
) -> tuple[list[Callable[..., Any]], str | None]:
    """Every argument of ``explore_dpor`` (or, with ``coroutines``,
    ``explore_async``) but ``trace_packages``; returns
    ``threads`` as a list and ``report_dir`` as a string (or None)."""
    check_callable("setup", setup, coroutines=coroutines)
    thread_list = check_threads(threads, coroutines=coroutines)
    check_callable("invariant", invariant, coroutines=coroutines)
    check_int("max_executions", max_executions, minimum=1, optional=True)
    check_int("preemption_bound", preemption_bound, minimum=0, maximum=MAX_U32, optional=True)
    check_int("max_branches", max_branches, minimum=1)
    check_seconds("timeout_per_run", timeout_per_run)
    check_bool("stop_on_first", stop_on_first)
    check_bool("detect_io", detect_io)
    check_seconds("deadlock_timeout", deadlock_timeout)
    check_int("reproduce_on_failure", reproduce_on_failure, minimum=0)
    check_seconds("total_timeout", total_timeout, optional=True)
    return thread_list, check_report_dir(report_dir)
