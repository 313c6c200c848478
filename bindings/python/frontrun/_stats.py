"""Process-wide settings and counters shared by the explorer and the pytest plugin.

The plugin cannot pass options to ``explore_dpor`` calls buried in the
tests it runs, and it wants totals over all of them for its summary. So
both meet here: the plugin sets :data:`DEFAULTS` and reads :data:`TOTALS`;
``explore_dpor`` reads the defaults for arguments its caller left out,
adds each finished exploration to the totals, and reports its progress to
whoever listens. Nothing here imports the native module, so the plugin
can import it at start-up for free.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Defaults:
    #: Used by ``explore_dpor`` when its caller passes ``max_executions=None``.
    max_executions: int | None = None
    #: Used by ``explore_dpor`` when its caller passes ``report_dir=None``.
    report_dir: str | None = None
    #: Added to the ``trace_packages`` / ``skip_packages`` of every
    #: ``explore_dpor``, ``replay`` and ``record_accesses`` call.
    trace_packages: tuple[str, ...] = ()
    skip_packages: tuple[str, ...] = ()
    #: Whether installing the cooperative classes also wraps the real locks
    #: the program created earlier (``frontrun._adopt``);
    #: ``--no-frontrun-patch-locks`` turns it off.
    adopt_locks: bool = True
    #: Under the pytest plugin, notices such as "the preload library is not
    #: loaded" go to the session's summary (once) instead of being warnings,
    #: so that ``-W error`` never turns them into test failures.
    notices_to_session: bool = False
    #: The directory project files are named relative to in explanations
    #: and reports (the pytest rootdir); ``None`` means the current directory.
    project_root: str | None = None


@dataclass
class Totals:
    explorations: int = 0
    executions: int = 0
    #: Explorations that found a failing interleaving.
    races: int = 0
    #: Explorations that found no failure but gave executions up.
    inconclusive: int = 0
    #: Explorations that held only within a preemption bound.
    bounded: int = 0
    #: Explorations stopped by a budget (max_executions, total_timeout)
    #: before the search was exhausted.
    cut_short: int = 0
    #: C-level events from the preload library that joined a step.
    native_events: int = 0
    #: C-level events lost to a full ring.
    events_lost: int = 0
    #: Explorations stopped by Ctrl-C (their executions are counted above).
    interrupted: int = 0
    #: HTML reports written, in order.
    reports: list[str] = field(default_factory=list)
    #: Database servers whose statements could not be read, with why.
    unseen_statements: set[str] = field(default_factory=set)
    #: Notes of passing explorations (``InterleavingResult.notes``), once each.
    notes: list[str] = field(default_factory=list)
    #: Notices for the session's summary, each once, in order.
    notices: list[str] = field(default_factory=list)

    def add(self, other: Totals) -> None:
        """Add another process's totals (a pytest-xdist worker's)."""
        self.explorations += other.explorations
        self.executions += other.executions
        self.races += other.races
        self.inconclusive += other.inconclusive
        self.bounded += other.bounded
        self.cut_short += other.cut_short
        self.native_events += other.native_events
        self.events_lost += other.events_lost
        self.interrupted += other.interrupted
        self.reports.extend(other.reports)
        self.notices.extend(n for n in other.notices if n not in self.notices)
        self.notes.extend(n for n in other.notes if n not in self.notes)


DEFAULTS = Defaults()
TOTALS = Totals()
_lock = threading.Lock()

#: Called as ``listener(executions, elapsed_seconds, outcome)`` while an
#: exploration runs: after each execution with ``outcome=None``; once at the
#: end with the result's one-line scope (``"holds within ..."``), or with the
#: exception that stopped it (``KeyboardInterrupt`` for Ctrl-C).
ProgressListener = Callable[[int, float, "str | BaseException | None"], None]
_listener: ProgressListener | None = None


def max_executions(given: int | None) -> int | None:
    # DEFAULTS is read at call time: a session replaces the object.
    return given if given is not None else DEFAULTS.max_executions


def report_dir(given: Any) -> Any:
    return given if given is not None else DEFAULTS.report_dir


def record(result: Any) -> None:
    """Add one finished exploration (an ``InterleavingResult``) to the totals."""
    with _lock:
        TOTALS.explorations += 1
        TOTALS.executions += result.num_explored
        verdict = result.verdict
        TOTALS.races += verdict == "race"
        TOTALS.inconclusive += verdict == "inconclusive"
        if verdict == "holds":
            TOTALS.cut_short += result.stopped_by is not None
            TOTALS.bounded += result.stopped_by is None and result.preemption_bound is not None and not result.complete
        TOTALS.native_events += int(getattr(result, "native_events", 0) or 0)
        TOTALS.events_lost += int(getattr(result, "events_lost", 0) or 0)
        TOTALS.unseen_statements.update(getattr(result, "unseen_statements", ()) or ())
        path = getattr(result, "report_path", None)
        if path:
            TOTALS.reports.append(str(path))
        for note in getattr(result, "notes", ()):
            if note not in TOTALS.notes:
                TOTALS.notes.append(note)


def notice(text: str) -> bool:
    """Keep ``text`` for the session's summary; False when no session
    collects notices (the caller then warns)."""
    if not DEFAULTS.notices_to_session:
        return False
    with _lock:
        if text not in TOTALS.notices:
            TOTALS.notices.append(text)
    return True


def begin_session(defaults: Defaults, listener: ProgressListener | None) -> tuple[Defaults, Totals, Any]:
    """Start a pytest session: its defaults, its listener, zeroed totals.
    Returns what was in place, for :func:`end_session` (sessions nest when
    a test runs pytest in-process)."""
    global DEFAULTS, TOTALS, _listener
    with _lock:
        saved = (DEFAULTS, TOTALS, _listener)
        DEFAULTS, TOTALS, _listener = defaults, Totals(), listener
    return saved


def end_session(saved: tuple[Defaults, Totals, Any]) -> None:
    global DEFAULTS, TOTALS, _listener
    with _lock:
        DEFAULTS, TOTALS, _listener = saved


class Progress:
    """What ``explore_dpor`` calls after each execution; forwards to the
    listener, if any, with the time since the exploration started."""

    def __init__(self) -> None:
        self.listener = _listener
        self.start = time.monotonic()
        self.executions = 0

    def __call__(self, executions: int) -> None:
        self.executions = executions
        if self.listener is not None:
            self.listener(executions, time.monotonic() - self.start, None)

    def close(self, outcome: str) -> None:
        # Called from the explorer's ``finally``: an exception in flight
        # (Ctrl-C, an error escaping the exploration) means no result will
        # be recorded, so the executions that did run are counted here.
        error = sys.exc_info()[1]
        if error is not None:
            with _lock:
                TOTALS.explorations += 1
                TOTALS.executions += self.executions
                TOTALS.interrupted += isinstance(error, KeyboardInterrupt)
        if self.listener is not None:
            ending: str | BaseException = outcome if error is None else error
            self.listener(self.executions, time.monotonic() - self.start, ending)
