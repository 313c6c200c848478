"""The data behind an HTML failure report, as plain values.

The explorer fills a :class:`FailureReport` from a failing execution and
:func:`frontrun._report_html.render_report` turns it into a page. Keeping the
model free of code objects, frames and live state means it can be written to
JSON, read back, and rendered later or elsewhere (``to_dict`` /
``from_dict``); the renderer never needs the program that failed.

Vocabulary:

* a *thread* is a worker of the exploration, numbered as the schedule
  numbers them (0, 1, ...);
* a *step* is one scheduled slice of a thread: what the thread did between
  two scheduling points, located at one source line. ``index`` is the step's
  position in the failing schedule, so indices increase with time;
* an *access* is a read or write of a shared location by a step, named the
  way the explanation names it (``Counter.value``, ``dict['k']``,
  ``socket:127.0.0.1:5432``);
* a *native event* is what ``libfrontrun_io.so`` saw a thread's native code
  do during the step (``send`` on ``socket:127.0.0.1:5432``), with an
  optional detail such as the SQL statement sent;
* a *conflict* joins two steps of different threads whose accesses to the
  same location do not commute (at least one writes): the order between them
  is what made this execution differ from the others.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

ACCESS_KINDS = ("read", "write")


@dataclass(frozen=True)
class Access:
    #: ``"read"`` or ``"write"``.
    kind: str
    #: The location, as the explanation names it: ``Counter.value``.
    label: str
    #: True for I/O resources (sockets, files) rather than Python objects.
    is_io: bool = False


@dataclass(frozen=True)
class NativeEvent:
    #: The libc call or the kind of event: ``send``, ``recv``, ``connect``,
    #: ``pthread_mutex_lock``...
    call: str
    #: The resource, named as the preload library names it:
    #: ``socket:127.0.0.1:5432``, ``file:/tmp/x``, ``mutex:0x7f3a2c001040``.
    resource: str
    #: Optional human detail: the SQL statement, a byte count.
    detail: str = ""


@dataclass(frozen=True)
class Step:
    #: Position in the failing schedule (0-based); unique, increasing in time.
    index: int
    #: The thread that ran the step (a :attr:`Thread.id`).
    thread: int
    #: Source file of the step's line, as the code object names it.
    file: str
    #: Line number in ``file`` (0 when unknown).
    line: int
    #: The source line itself, stripped ("" when the file is not readable).
    source: str = ""
    #: Shared locations the step touched, in the order it touched them.
    accesses: tuple[Access, ...] = ()
    #: What the thread's native code did during the step.
    native_events: tuple[NativeEvent, ...] = ()
    #: Name of the function the line is in, when known.
    function: str = ""
    #: ``file`` as the explanation names it: relative to the project root,
    #: or to the ``site-packages`` or standard-library directory it was
    #: loaded from (``cachetools/__init__.py``). Empty: the renderer shows
    #: the file's base name.
    display_file: str = ""


@dataclass(frozen=True)
class Thread:
    #: The number the schedule uses for the thread.
    id: int
    #: A name for people: the worker callable's name, or ``thread 0``.
    name: str = ""


@dataclass(frozen=True)
class Conflict:
    #: :attr:`Step.index` of the earlier of the two steps.
    first: int
    #: :attr:`Step.index` of the later step; a different thread's.
    second: int
    #: The location both steps touched: ``Counter.value``.
    label: str
    #: How the two accesses pair up, in time order: ``write-write``,
    #: ``read-write`` (the first step read) or ``write-read``.
    kind: str


@dataclass(frozen=True)
class FailureReport:
    #: What failed, one line: the invariant's message, or ``Deadlock``.
    title: str
    #: The race in words: ``lost update on Counter.value``.
    classification: str
    #: A line the user can paste to run the failing interleaving again.
    replay: str
    threads: tuple[Thread, ...]
    #: The steps to show, in schedule order (usually the ones that touch a
    #: conflicting location or do native I/O, not every step).
    steps: tuple[Step, ...]
    conflicts: tuple[Conflict, ...] = ()
    #: Longer explanation text, shown under the header when not empty.
    explanation: str = ""
    #: Number of executions explored before this failure, when known.
    executions: int | None = None
    #: The full failing schedule (thread of each step), when known.
    schedule: tuple[int, ...] = ()
    #: Native events dropped because the ring overflowed; a non-zero value
    #: means the native part of the picture is incomplete.
    events_lost: int = 0
    #: The pytest node id of the test whose exploration failed
    #: (``tests/test_stock.py::test_sold_once``), "" outside pytest.
    test: str = ""

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first inconsistency, if any."""
        thread_ids = [t.id for t in self.threads]
        if len(set(thread_ids)) != len(thread_ids):
            raise ValueError(f"thread ids repeat: {thread_ids}")
        steps: dict[int, Step] = {}
        for step in self.steps:
            if step.index in steps:
                raise ValueError(f"step index {step.index} appears twice")
            if step.thread not in thread_ids:
                raise ValueError(f"step {step.index} belongs to thread {step.thread}, which is not in threads")
            for access in step.accesses:
                if access.kind not in ACCESS_KINDS:
                    raise ValueError(f"step {step.index}: access kind {access.kind!r} is not one of {ACCESS_KINDS}")
            steps[step.index] = step
        for n, conflict in enumerate(self.conflicts):
            for end in (conflict.first, conflict.second):
                if end not in steps:
                    raise ValueError(f"conflict {n} refers to step {end}, which is not in steps")
            if conflict.first >= conflict.second:
                raise ValueError(f"conflict {n}: first step {conflict.first} does not come before {conflict.second}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-compatible values (tuples become lists)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FailureReport:
        """The inverse of :meth:`to_dict` (accepts the output of ``json.loads``)."""
        data = dict(data)
        data["threads"] = tuple(Thread(**t) for t in data.get("threads", ()))
        data["steps"] = tuple(
            Step(
                **{
                    **s,
                    "accesses": tuple(Access(**a) for a in s.get("accesses", ())),
                    "native_events": tuple(NativeEvent(**e) for e in s.get("native_events", ())),
                }
            )
            for s in data.get("steps", ())
        )
        data["conflicts"] = tuple(Conflict(**c) for c in data.get("conflicts", ()))
        data["schedule"] = tuple(data.get("schedule", ()))
        return cls(**data)
