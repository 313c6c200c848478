"""Deadlock reports: who holds which cooperative lock and waits for what.

The native side reports a deadlock as thread numbers and object keys; this
module turns the keys back into the primitives (``describe``), names them by
where they sit in the shared state (``state.forks[1]``), and says it in a
sentence: "thread 0 holds Lock state.a and waits for Lock state.b".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from frontrun import _engine

#: A session's `describe` (or a test's stand-in returning `(owner, kind, slot)` tuples).
Describe = Callable[[int], "_engine.KeyDescription | tuple[Any, str, Any] | None"]

_MAX_DEPTH = 3


@dataclass(frozen=True)
class WaitEdge:
    """One blocked thread: the locks it holds and what it waits for."""

    thread: int
    #: Names of the locks it holds, in acquisition order.
    holds: tuple[str, ...]
    #: "lock", "object" (event, condition, queue...), "thread" or "spawn".
    waits: str
    #: Name of what it waits for.
    target: str
    #: For a lock held by a thread that has already finished: that thread.
    finished_holder: int | None = None

    def __str__(self) -> str:
        text = f"thread {self.thread}"
        if self.holds:
            text += " holds " + " and ".join(self.holds) + " and"
        if self.waits == "lock" and self.finished_holder is not None:
            return f"{text} waits for {self.target}, which thread {self.finished_holder} still held when it finished"
        if self.waits == "lock":
            return f"{text} waits for {self.target}"
        if self.waits == "thread":
            return f"{text} waits for {self.target} to finish"
        return f"{text} waits on {self.target}"


class Deadlock(list):  # type: ignore[type-arg]
    """The threads of a deadlock (the wait-for cycle, or every blocked
    thread when there is no cycle), as a list of thread numbers, with the
    details: ``cycle`` and ``blocked`` hold :class:`WaitEdge` entries."""

    cycle: list[WaitEdge]
    blocked: list[WaitEdge]

    def __init__(self, threads: Sequence[int], cycle: list[WaitEdge], blocked: list[WaitEdge]) -> None:
        super().__init__(threads)
        self.cycle = cycle
        self.blocked = blocked

    @property
    def is_cycle(self) -> bool:
        return bool(self.cycle)

    def describe(self) -> str:
        if self.cycle:
            return "lock-ordering cycle: " + "; ".join(str(e) for e in self.cycle)
        return "every unfinished thread is blocked: " + "; ".join(str(e) for e in self.blocked)


def _find_path(target: Any, state: Any) -> str | None:
    """Where ``target`` sits in ``state``: ``state.a``, ``state.forks[1]``..."""
    seen = {id(state)}
    frontier: list[tuple[Any, str]] = [(state, "state")]
    for _ in range(_MAX_DEPTH):
        nxt: list[tuple[Any, str]] = []
        for obj, path in frontier:
            children: list[tuple[Any, str]] = []
            if isinstance(obj, (list, tuple)):
                children = [(v, f"{path}[{i}]") for i, v in enumerate(obj)]
            elif isinstance(obj, dict):
                children = [(v, f"{path}[{k!r}]") for k, v in obj.items()]
            else:
                attrs = getattr(obj, "__dict__", None)
                if isinstance(attrs, dict) and not obj.__class__.__module__.startswith("frontrun."):
                    children = [(v, f"{path}.{k}") for k, v in attrs.items()]
            for child, child_path in children:
                if child is target:
                    return child_path
                if id(child) not in seen:
                    seen.add(id(child))
                    nxt.append((child, child_path))
        frontier = nxt
    return None


def primitive_name(obj: Any, state: Any) -> str:
    """``Lock state.a``; a lock or condition inside an Event, Queue...
    is named after that object."""
    outer = getattr(obj, "_frontrun_for", None) or obj
    kind = type(outer).__name__
    path = _find_path(outer, state) if state is not None else None
    return f"{kind} {path}" if path else f"{kind} at {id(outer):#x}"


def _key_name(describe: Describe, key: int, state: Any) -> str:
    d = describe(key)
    if d is None:
        return f"<object {key:#x}>"
    if d[1] == "io":
        # A native mutex: its name says which object made it.
        return str(d[2])
    return primitive_name(d[0], state)


def build_deadlock(detail: _engine.DeadlockDetail | None, describe: Describe, state: Any) -> Deadlock | None:
    """The :class:`Deadlock` of an execution report's ``deadlock_detail``."""
    if detail is None:
        return None

    blocked_threads = {e.thread for e in detail.blocked}

    def edge(e: _engine.BlockedThread) -> WaitEdge:
        holds = tuple(_key_name(describe, k, state) for k in e.holds)
        finished_holder = None
        if e.waits in ("lock", "object"):
            target = _key_name(describe, e.target, state)
            if e.waits == "lock":
                d = describe(e.target)
                owner = getattr(d[0], "_owner", None) if d is not None else None
                if isinstance(owner, int) and owner not in blocked_threads:
                    finished_holder = owner
        elif e.waits == "thread":
            target = f"thread {e.target}"
        else:
            target = "being started"
        return WaitEdge(e.thread, holds, e.waits, target, finished_holder)

    cycle = [edge(e) for e in detail.cycle]
    blocked = [edge(e) for e in detail.blocked]
    threads = [e.thread for e in (cycle or blocked)]
    return Deadlock(threads, cycle, blocked)


def sync_tags(sync_steps: Sequence[_engine.SyncStep], describe: Describe, state: Any) -> dict[int, list[str]]:
    """Step index -> ``["acquire Lock state.a", ...]`` for the primitives
    that more than one thread used."""
    users: dict[int, set[int]] = {}
    for s in sync_steps:
        users.setdefault(s.key, set()).add(s.thread)
    names: dict[int, str] = {}
    tags: dict[int, list[str]] = {}
    for s in sync_steps:
        if len(users[s.key]) < 2:
            continue
        if s.key not in names:
            names[s.key] = _key_name(describe, s.key, state)
        tags.setdefault(s.step, []).append(f"{s.op} {names[s.key]}")
    return tags
