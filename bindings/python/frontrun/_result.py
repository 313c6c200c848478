"""What an exploration returns."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from frontrun._deadlock import Deadlock


@dataclass
class InterleavingResult:
    """Outcome of :func:`frontrun.explore_dpor`.

    ``counterexample`` is the schedule of the first failing execution: the
    thread that performed each step, in order. Pass it to
    :func:`frontrun.replay` to run that interleaving again.
    """

    property_holds: bool = True
    num_explored: int = 0
    counterexample: list[int] | None = None
    #: ``(execution number, schedule)`` of every failing execution seen.
    failures: list[tuple[int, list[int]]] = field(default_factory=list)
    explanation: str | None = None
    reproduction_attempts: int = 0
    reproduction_successes: int = 0
    #: True when every distinct interleaving (within the bounds) was explored.
    exhausted: bool = False
    #: The deadlock of the first failing execution, if it deadlocked: a list
    #: of the threads in the wait-for cycle (or of every blocked thread) with
    #: ``.cycle``/``.blocked`` details and ``.describe()`` (see
    #: ``frontrun._deadlock.Deadlock``).
    deadlock: Deadlock | None = None
    #: Native events lost to ring overflow: when not 0, the C-level history
    #: the exploration saw was incomplete.
    events_lost: int = 0
    #: C-level events (libfrontrun_io.so) attributed to worker threads; 0
    #: when the process does not run under the preload library.
    native_events: int = 0
    #: Times a worker blocked in native code (waiting on a server, e.g. for
    #: a row lock another worker holds) was set aside so others could run.
    native_waits: int = 0
    #: Database servers whose statements could not be read (``"server:
    #: why"``, e.g. TLS through a library other than OpenSSL): their
    #: traffic only counted as a write to the whole server.
    unseen_statements: list[str] = field(default_factory=list)
    #: Executions abandoned (timeout, stuck thread), with the reason.
    inconclusive: list[tuple[int, str]] = field(default_factory=list)
    #: Exceptions raised by worker threads in the first failing execution.
    errors: dict[int, BaseException] = field(default_factory=dict)
    #: The ``AssertionError`` the invariant raised in the first failing
    #: execution, when it failed by raising rather than returning False.
    invariant_error: AssertionError | None = None
    #: Path of the HTML report written for the failure (``report_dir=``).
    report_path: str | None = None

    def assert_holds(self, msg_prefix: str = "") -> None:
        """Raise ``AssertionError`` with the explanation unless the property held.

        When the invariant failed with its own ``assert``, that assertion is
        raised again (same type, its traceback kept), its message followed by
        the explanation.
        """
        __tracebackhide__ = True  # pytest shows the caller's line, not this one
        if self.property_holds:
            return
        text = self.explanation or "the invariant was violated"
        if msg_prefix:
            text = f"{msg_prefix}\n{text}"
        own = self.invariant_error
        if own is not None:
            first = str(own)
            again = copy.copy(own)
            again.args = (f"{first}\n\n{text}" if first else text,)
            raise again.with_traceback(own.__traceback__) from None
        cause = next(iter(self.errors.values()), None)
        raise AssertionError(text) from cause
