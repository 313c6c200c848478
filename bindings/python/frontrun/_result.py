"""What an exploration and a replay return, and what a verdict may claim.

An exploration ends in one of three verdicts:

- ``"race"``: an execution broke the invariant, raised or deadlocked; the
  result holds its schedule and an explanation.
- ``"holds"``: no failure, and every execution that ran was checked to the
  end. What that proves is said by :attr:`InterleavingResult.scope`: every
  interleaving, every interleaving within the preemption bound, or only the
  executions that ran before a budget the caller set stopped the search.
- ``"inconclusive"``: no failure was found, but some execution was given up
  (it timed out, a thread was stuck, a replayed prefix diverged, a lock
  frontrun does not control was contended), so the interleavings behind it
  were never checked. This is never reported as a pass.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from frontrun._deadlock import Deadlock

T = TypeVar("T")


class InconclusiveError(AssertionError):
    """Raised by :meth:`InterleavingResult.assert_holds` when no failure was
    found but some executions were given up, so the property is unproven.

    A subclass of ``AssertionError``, so pytest reports it as a failed test.
    """


@dataclass
class InterleavingResult:
    """Outcome of :func:`frontrun.explore_dpor`.

    ``counterexample`` is the schedule of the first failing execution: the
    thread that performed each step, in order. Pass it to
    :func:`frontrun.replay` to run that interleaving again. :attr:`verdict`
    says which of the three outcomes this is, :attr:`scope` what it covers.
    """

    #: False when a failure was found, None when the result is inconclusive
    #: (no failure found, but executions were given up), True otherwise.
    property_holds: bool | None = True
    num_explored: int = 0
    counterexample: list[int] | None = None
    #: ``(execution number, schedule)`` of every failing execution seen.
    failures: list[tuple[int, list[int]]] = field(default_factory=list)
    explanation: str | None = None
    reproduction_attempts: int = 0
    reproduction_successes: int = 0
    #: True when the search ran to its end (every distinct interleaving within
    #: the preemption bound explored) and no execution was given up.
    exhausted: bool = False
    #: True when the search ran to its end having explored every distinct
    #: interleaving: always for an exhausted full DPOR, and within a
    #: preemption bound when the bound cut nothing or the unbounded search
    #: (which runs beside the bounded one) finished first.
    complete: bool = False
    #: The preemption bound the search used (None: full DPOR).
    preemption_bound: int | None = None
    #: The budget that ended the search before it was exhausted, as the
    #: caller set it (``"max_executions=100"``, ``"total_timeout=2.0"``), or
    #: None when nothing cut it short.
    stopped_by: str | None = None
    #: Executions cut at ``max_branches`` scheduling points, with the reason:
    #: they ran, but their end state was not checked.
    truncated: list[tuple[int, str]] = field(default_factory=list)
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
    #: Executions given up (timeout, stuck thread, diverging replay, a lock
    #: frontrun does not control), with the reason. Any entry makes the
    #: verdict ``"inconclusive"`` unless a failure was found.
    inconclusive: list[tuple[int, str]] = field(default_factory=list)
    #: Exceptions raised by worker threads in the first failing execution.
    errors: dict[int, BaseException] = field(default_factory=dict)
    #: The ``AssertionError`` the invariant raised in the first failing
    #: execution, when it failed by raising rather than returning False.
    invariant_error: AssertionError | None = None
    #: Path of the HTML report written for the failure (``report_dir=``).
    report_path: str | None = None
    #: Untraced modules (standard library, skipped packages) that the
    #: workers' traced code called into, sorted.
    untraced_modules: list[str] = field(default_factory=list)
    #: Things a passing result should be read with, e.g. that no shared
    #: access was seen at all while the workers ran in untraced modules.
    notes: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        """``"race"``, ``"holds"`` or ``"inconclusive"`` (see the module docs)."""
        if self.failures or self.property_holds is False:
            return "race"
        if self.inconclusive:
            return "inconclusive"
        return "holds"

    @property
    def scope(self) -> str:
        """One line saying what the verdict covers, for example
        ``holds within preemption_bound=2: every interleaving with at most
        2 preemptions explored (6 executions)``."""
        n = self.num_explored
        runs = _count(n, "execution")
        verdict = self.verdict
        if verdict == "race":
            first = self.failures[0][0] if self.failures else n
            return f"race found in execution {first} of {runs}"
        if verdict == "inconclusive":
            given_up = len({number for number, _ in self.inconclusive})
            return (
                f"inconclusive: no failure found, but {given_up} of {runs} given up, "
                f"so the interleavings behind {'it' if given_up == 1 else 'them'} were not checked"
            )
        notes = [f"{_count(len(self.truncated), 'execution')} cut at max_branches and not checked"]
        notes = notes if self.truncated else []
        if self.stopped_by is not None:
            extra = f" ({'; '.join(notes)})" if notes else ""
            return f"holds for the {runs} run: stopped by {self.stopped_by} before the search was exhausted{extra}"
        detail = f" ({'; '.join([runs, *notes])})"
        if self.preemption_bound is None or self.complete:
            return f"holds: every interleaving explored{detail}"
        b = self.preemption_bound
        return (
            f"holds within preemption_bound={b}: every interleaving with at most "
            f"{_count(b, 'preemption')} explored{detail}"
        )

    def inconclusive_report(self) -> str:
        """Why each given-up execution was given up, and what to do about it."""
        lines = [self.scope + "."]
        lines.extend(f"  execution {number}: {why}" for number, why in self.inconclusive)
        advice = _advice([why for _, why in self.inconclusive])
        if advice:
            lines.append("What to do:")
            lines.extend(f"  - {a}" for a in advice)
        return "\n".join(lines)

    def assert_holds(self, msg_prefix: str = "") -> None:
        """Raise ``AssertionError`` with the explanation unless the property held.

        When the invariant failed with its own ``assert``, that assertion is
        raised again (same type, its traceback kept), its message followed by
        the explanation. An inconclusive result raises
        :class:`InconclusiveError` with the executions given up, why, and what
        to do. A search cut short by a budget the caller set
        (``max_executions``, ``total_timeout``, ``max_branches``) does not
        raise for that alone; :attr:`scope` says how far it went.
        """
        __tracebackhide__ = True  # pytest shows the caller's line, not this one
        verdict = self.verdict
        if verdict == "holds":
            return
        if verdict == "inconclusive":
            report = self.inconclusive_report()
            raise InconclusiveError(f"{msg_prefix}\n{report}" if msg_prefix else report)
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


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


# Substrings of the reasons an execution is given up (written by _run.py and
# the native session), and what the user can do about each.
_ADVICE = (
    (
        "timeout_per_run",
        "an execution ran longer than timeout_per_run: raise it, or take real sleeps and waits out of the "
        "workers (under frontrun's scheduler they do not make a race more likely)",
    ),
    (
        "not cooperative",
        "a lock frontrun does not control was contended: create it in setup() or anywhere after frontrun "
        "patched threading, or run the test under the pytest plugin, which patches threading before your "
        "modules are imported",
    ),
    (
        "deadlock_timeout",
        "a thread made no progress for deadlock_timeout: it waited in code frontrun does not see (a "
        "blocking call, a lock of a C extension); run under `frontrun pytest` so native waits are seen, "
        "or raise deadlock_timeout if the wait is only slow",
    ),
    (
        "(non-determinism)",
        "the program did something else under the same schedule: make setup() and the workers "
        "deterministic (no time, randomness or outside state that changes between executions)",
    ),
    (
        "setup()",
        "setup() did not finish in time: it waited on something outside the exploration (a lock, or a "
        "row another connection holds); make it independent of earlier executions' leftovers",
    ),
)


def _advice(reasons: list[str]) -> list[str]:
    out: list[str] = []
    for needle, text in _ADVICE:
        if any(needle in r for r in reasons) and text not in out:
            out.append(text)
    return out


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
