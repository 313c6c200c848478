"""Turning a failing execution into an explanation a person can follow.

Input: the steps of the execution as the native side recorded them (thread,
code object, instruction offset, accesses) and a way to describe an access
key. Output: the interleaved steps that touch locations more than one thread
touched with at least one write, each with its source line, then what kind
of race it is.
"""

from __future__ import annotations

import linecache
import re
import types
from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

from frontrun import _engine
from frontrun._code import instruction_at, line_of
from frontrun._display import resource_name, source_path
from frontrun._token import replay_line, schedule_text

#: A session's `describe` (or a test's stand-in returning `(owner, kind, slot)` tuples).
Describe = Callable[[int], "_engine.KeyDescription | tuple[Any, str, Any] | None"]
#: The session's records, or the tuples of their fields that tests build.
AccessRecord: TypeAlias = "_engine.Access | tuple[int, bool]"
StepRecord: TypeAlias = "_engine.Step | tuple[int, types.CodeType | None, int, Sequence[AccessRecord]]"
NativeRecord: TypeAlias = "_engine.NativeCall | tuple[str, str, str, bool]"


class Access:
    """One access of one step (a plain class: there is one per access of
    the execution being explained)."""

    __slots__ = ("code", "key", "offset", "step", "thread", "write")

    def __init__(self, step: int, thread: int, key: int, write: bool, code: types.CodeType | None, offset: int) -> None:
        self.step = step
        self.thread = thread
        self.key = key
        self.write = write
        self.code = code
        self.offset = offset


def _owner_name(owner: Any) -> str:
    if isinstance(owner, type):
        return owner.__name__
    return type(owner).__name__


def label(describe: Describe, key: int, code: types.CodeType | None = None, offset: int = 0) -> str:
    """A short name for the location behind ``key``: ``Counter.value``, ``dict['k']``..."""
    d = describe(key)
    if d is None:
        return f"<location {key:#x}>"
    owner, kind, slot = d
    if kind == "io":
        return resource_name(str(slot))
    if kind == "attr":
        return f"{_owner_name(owner)}.{slot}"
    if kind == "global":
        module = owner.get("__name__", "?") if isinstance(owner, dict) else "?"
        return f"{module}.{slot}"
    if kind == "item":
        return f"{_owner_name(owner)}[{slot!r}]"
    if kind == "index":
        return f"{_owner_name(owner)}[{slot}]"
    if kind == "shape":
        return f"{_owner_name(owner)} (length/membership)"
    if kind == "sync":
        return f"{type(getattr(owner, '_frontrun_for', None) or owner).__name__} at {id(owner):#x}"
    if kind == "cell":
        instr = instruction_at(code, offset)
        name = instr.argval if instr is not None and "DEREF" in instr.opname else "?"
        return f"closure variable {name!r}"
    return f"{_owner_name(owner)}:{kind}"


def _where(code: types.CodeType | None, offset: int) -> tuple[str, int, str]:
    if code is None:
        return ("?", 0, "")
    line = line_of(code, offset)
    source = linecache.getline(code.co_filename, line).strip() if line else ""
    return (code.co_filename, line, source)


def conflicting_keys(accesses: Sequence[Access]) -> set[int]:
    """Keys touched by two or more threads, at least once with a write."""
    threads: dict[int, set[int]] = {}
    written: set[int] = set()
    for a in accesses:
        threads.setdefault(a.key, set()).add(a.thread)
        if a.write:
            written.add(a.key)
    return {k for k, ts in threads.items() if len(ts) > 1 and k in written}


def _is_check(a: Access, describe: Describe | None) -> bool:
    """A read that tests a condition (membership, length) rather than
    fetching a value to compute with."""
    instr = instruction_at(a.code, a.offset)
    if instr is not None and instr.opname == "CONTAINS_OP":
        return True
    d = describe(a.key) if describe is not None else None
    return d is not None and d[1] == "shape"


def classify(key: int, accesses: Sequence[Access], describe: Describe | None = None) -> tuple[str, str]:
    """(kind, sentence) for the accesses to one conflicting key, in order."""
    seq = [a for a in accesses if a.key == key]
    for i, a in enumerate(seq):
        if a.write:
            continue
        # a: a read by thread A; look for a write by another thread, then a
        # write by A (lost update) or another action by A (check-then-act).
        for j in range(i + 1, len(seq)):
            b = seq[j]
            if b.thread == a.thread and b.write:
                break
            if b.thread != a.thread and b.write:
                for c in seq[j + 1 :]:
                    if c.thread != a.thread:
                        continue
                    if not c.write:
                        # A read it again after B's write: what A writes
                        # next is not based on the stale read.
                        break
                    if not _is_check(a, describe):
                        return (
                            "lost update",
                            f"thread {a.thread} read it, thread {b.thread} wrote it, then thread {a.thread} "
                            f"wrote a value based on its stale read",
                        )
                    break
                later_acts = [x for x in accesses if x.thread == a.thread and x.step > b.step and x.write]
                if later_acts:
                    return (
                        "check-then-act",
                        f"thread {a.thread} checked it, thread {b.thread} changed it before thread {a.thread} acted "
                        f"on what it had seen",
                    )
                return (
                    "read-write",
                    f"thread {a.thread} read it before thread {b.thread} wrote it",
                )
    writers = [a for a in seq if a.write]
    if len({a.thread for a in writers}) > 1:
        first, second = writers[0], next(w for w in writers if w.thread != writers[0].thread)
        return ("write-write", f"thread {first.thread} and thread {second.thread} both wrote it")
    w = writers[0] if writers else seq[0]
    r = next((a for a in seq if a.thread != w.thread), seq[-1])
    return ("read-write", f"thread {w.thread} wrote it and thread {r.thread} read it")


#: Kinds of race from the most telling to the least.
_SEVERITY = ("lost update", "check-then-act", "write-write", "read-write")

#: A location of asyncio's own bookkeeping of a task or future (a task
#: awaiting another one reads its state, a done callback joins its list):
#: it orders the steps, but it is not the program's race.
ASYNCIO_BOOKKEEPING = re.compile(r"(Task|Future)\._\w+")


def classify_locations(
    keys: set[int], accesses: Sequence[Access], describe: Describe, name_of: Callable[[int], str]
) -> list[tuple[str, str, str]]:
    """``(name, kind, sentence)`` per conflicting location, in the order of
    its first access. Several engine keys can share a name (a database row:
    its key, its table's bucket, its commit order): the location gets the
    most telling kind any of them shows, so the answer does not depend on
    the order the keys happen to come in."""
    first_step: dict[int, int] = {}
    for a in accesses:
        first_step.setdefault(a.key, a.step)
    by_name: dict[str, list[int]] = {}
    for key in sorted(keys, key=lambda k: (first_step[k], name_of(k))):
        by_name.setdefault(name_of(key), []).append(key)
    out = []
    for name, group in by_name.items():
        found = [classify(key, accesses, describe) for key in group]
        kind, sentence = min(found, key=lambda f: (_SEVERITY.index(f[0]), f[1]))
        out.append((name, kind, sentence))
    return out


def thread_name(fn: Any) -> str:
    """How a thread callable is named in explanations."""
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or type(fn).__name__
    code = getattr(fn, "__code__", None)
    if isinstance(code, types.CodeType):
        return f"{name} ({source_path(code.co_filename)}:{code.co_firstlineno})"
    return str(name)


def _tags(describe: Describe, accs: Sequence[AccessRecord], code: types.CodeType | None, offset: int) -> list[str]:
    """``read x``/``write x`` per location, once each: a database access
    expands into several keys with the same name, and a write covers the
    reply's read."""
    written: dict[str, bool] = {}
    for k, w in accs:
        name = label(describe, k, code, offset)
        written[name] = written.get(name, False) or w
    return [f"{'write' if w else 'read'} {name}" for name, w in written.items()]


#: The ``file:line`` column of the interleaving is as wide as its longest
#: entry, up to this; a longer one takes a line of its own, so that the
#: source lines below and above it stay in one column.
WHERE_WIDTH = 40


def _interleaving_lines(rows: Sequence[tuple[int, str, str, str, list[str]]]) -> list[str]:
    """``(thread, file:line, source, tags, detail lines)`` per step, as
    aligned lines."""
    width = max((len(where) for _, where, _, _, _ in rows if len(where) <= WHERE_WIDTH), default=0)
    width = max(width, 24)
    out: list[str] = []
    for thread, where, source, tags, sent in rows:
        head = f"  thread {thread} | "
        if len(where) > width:
            out.append(f"{head}{where}")
            where = ""
        out.append(f"{head if where else ' ' * len(head)}{where:<{width}} {source:<40} [{tags}]")
        indent = " " * (len(head) + width + 1)
        out.extend(f"{indent}{detail}" for detail in sent)
    return out


#: How the label of a native access begins when a process the worker
#: started made it (``in child process 1234 (cat)``), or a thread its
#: native code started (``in a native thread started at ext.so:f+0x1c``).
BY_OTHERS = ("in child process ", "in a native thread started at ")


def _by_children(native: Sequence[NativeRecord], shown: str) -> list[str]:
    """What the processes the step's worker started, and the threads its
    native code started, did in the step, to the resources named in
    ``shown`` (the step's tags)."""
    out = []
    for call, resource, label, _write in native:
        if label.startswith(BY_OTHERS) and resource_name(resource) in shown:
            line = f"{label}: {call}() on {resource_name(resource)}"
            if line not in out:
                out.append(line)
    return out


def _statements(native: Sequence[NativeRecord], source: str) -> list[str]:
    """The requests a step sent to a database, when its source line does not
    show them (a query built elsewhere and passed in a variable)."""
    out = []
    for call, _resource, statement, _write in native:
        if call.startswith("pthread_") or statement.startswith(BY_OTHERS):
            continue
        words = statement.split()
        if not words or words[0].lower() in source.lower():
            continue
        if statement not in out:
            out.append(statement)
    return out


def explain(
    *,
    steps: Sequence[StepRecord],
    describe: Describe,
    num_explored: int,
    schedule: Sequence[int],
    errors: dict[int, BaseException],
    deadlock: Sequence[int] | None = None,
    invariant_failed: bool = True,
    thread_names: Sequence[str] = (),
    sync_tags: dict[int, list[str]] | None = None,
    native_steps: Sequence[Sequence[NativeRecord]] = (),
    detect_io: bool = True,
    virtual_time: bool = True,
    token_threads: int | None = None,
) -> str:
    """``sync_tags`` maps step indices to the synchronisation operations of
    the step (``acquire Lock state.lock``), shown in the interleaving;
    ``token_threads`` is the number of threads the replay token records
    (default: one per name)."""
    sync_tags = sync_tags or {}
    accesses: list[Access] = []
    for i, (thread, code, offset, accs) in enumerate(steps):
        for key, write in accs:
            accesses.append(Access(i, thread, key, write, code, offset))
    keys = conflicting_keys(accesses)

    lines: list[str] = []
    what = "deadlock" if deadlock else ("exception in a thread" if errors else "invariant violated")
    if errors and invariant_failed:
        what = "exception in a thread; invariant violated"
    lines.append(f"Race found after {num_explored} execution{'s' if num_explored != 1 else ''} ({what}).")
    if thread_names:
        lines.append("Threads: " + ", ".join(f"{i} = {name}" for i, name in enumerate(thread_names)))
    lines.append("")
    if keys or sync_tags:
        what_shown = "touch shared locations" + (" or synchronise" if sync_tags else "")
        lines.append(f"Interleaving (steps that {what_shown}):")
        rows: list[tuple[int, str, str, str, list[str]]] = []
        for i, (thread, code, offset, accs) in enumerate(steps):
            relevant = [(k, w) for k, w in accs if k in keys]
            step_tags = _tags(describe, relevant, code, offset) + sync_tags.get(i, [])
            if not step_tags:
                continue
            native = native_steps[i] if i < len(native_steps) else ()
            filename, line, source = _where(code, offset)
            details = [f"sent: {statement}" for statement in _statements(native, source)]
            details += _by_children(native, " ".join(step_tags))[:3]
            # A scheduled native mutex call: the step starts in C, inside the
            # call made at the line shown; say where.
            details += [f"in C: {call}() at {site}" for call, _, site, _ in native if call.startswith("pthread_")][:1]
            rows.append((thread, f"{source_path(filename)}:{line}", source, ", ".join(step_tags), details))
        lines.extend(_interleaving_lines(rows))
        lines.append("")
    if keys:
        lines.append("Conflicts:")
        first_code: dict[int, tuple[Any, int]] = {}
        for a in accesses:
            first_code.setdefault(a.key, (a.code, a.offset))
        # One database row or table stands for several engine keys.
        for name, kind, sentence in classify_locations(
            keys, accesses, describe, lambda k: label(describe, k, *first_code[k])
        ):
            lines.append(f"  {kind} on {name}: {sentence}")
    elif not deadlock:
        lines.append("No location was touched by two threads with a write; the failure may come from")
        lines.append("state frontrun does not see (untraced library code, native code, I/O).")
    if deadlock:
        describe_deadlock = getattr(deadlock, "describe", None)
        if describe_deadlock is not None:
            text = describe_deadlock()
        else:
            text = " -> ".join(f"thread {t}" for t in [*deadlock, deadlock[0]])
        if lines[-1]:
            lines.append("")
        lines.append(f"Deadlock: {text}")
    if errors:
        import traceback
    for tid, exc in sorted(errors.items()):
        lines.append("")
        lines.append(f"Thread {tid} raised {type(exc).__name__}: {exc}")
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        lines.extend("    " + ln for ln in tb.rstrip().splitlines())
    lines.append("")
    lines.append(schedule_text(schedule))
    lines.append(replay_line(schedule, token_threads or len(thread_names) or None, detect_io, virtual_time))
    return "\n".join(lines)
