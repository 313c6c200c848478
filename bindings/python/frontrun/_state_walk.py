"""Deterministic numbering of the shared state, before the threads start.

``setup()`` builds the same object graph in every execution, so walking it
breadth-first from the returned state (containers, instance attributes and
slots, the cells of functions' closures) visits objects in the same order
each time. The native side numbers them in that order, which makes the keys of
accesses to them identical across executions (see ``keys.rs``).
"""

from __future__ import annotations

import _thread
import sys
import types
from collections import deque
from typing import Any

_LEAF_TYPES = (
    str,
    bytes,
    int,
    float,
    bool,
    complex,
    type(None),
    range,
    types.ModuleType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.CodeType,
    type,
)

MAX_OBJECTS = 10_000


_REAL_LOCKS = (_thread.LockType, _thread.RLock)


def _refs_when_unshared() -> int:
    """References a lock has, seen from the loop in ``_upgrade_locks``, when
    only the attribute dict holds it (the dict's, the loop variable's, the
    items iterator's cached pair, getrefcount's own: measured, since it
    differs between interpreter versions)."""
    d = {"lock": _thread.allocate_lock()}
    for _name, value in d.items():
        return sys.getrefcount(value)
    return 0


_ONLY_OWNER_REFS = _refs_when_unshared()


def _upgrade_locks(d: dict[str, Any]) -> None:
    """Replace real locks that only this attribute dict refers to, and that
    nobody holds, by cooperative ones.

    A library that bound ``threading.Lock``/``RLock`` at import time (before
    frontrun patched ``threading``) makes real locks even in ``setup()``;
    the scheduler cannot run around a contended one. When the attribute is
    the lock's only reference, swapping it changes nothing the program can
    observe. A lock referred to from elsewhere (a ``Condition`` built on it,
    a bound ``acquire`` kept aside) is left alone: swapping it would split
    one lock in two.
    """
    from frontrun import _coop

    for name, value in d.items():
        if type(value) not in _REAL_LOCKS or sys.getrefcount(value) > _ONLY_OWNER_REFS:
            continue
        if not value.acquire(False):
            continue
        value.release()
        cls = _coop.RLock if type(value) is _thread.RLock else _coop.Lock
        d[name] = cls(_real_only=False)


def _children(obj: Any, upgrade_locks: bool) -> list[Any]:
    out = _contents(obj)
    if out is not None and type(obj) in _BUILTIN_CONTAINERS:
        return out
    # Plain objects, and subclasses of the containers (a cache that is a
    # dict with its lock beside the items): the attributes too.
    out = out or []
    d = getattr(obj, "__dict__", None)
    if isinstance(d, dict):
        # (Not inside frontrun's own primitives: their real lock is theirs.)
        if upgrade_locks and type(obj).__module__ != "frontrun._coop":
            _upgrade_locks(d)
        out.extend(d.values())
    for cls in type(obj).__mro__:
        for slot in cls.__dict__.get("__slots__", ()):
            if isinstance(slot, str):
                try:
                    out.append(object.__getattribute__(obj, slot))
                except AttributeError:
                    pass
    return out


def _contents(obj: Any) -> list[Any] | None:
    """What a function, cell or container holds; None for other objects."""
    if isinstance(obj, types.FunctionType):
        # A closure's cells hold state too: a decorator's cache, lock and
        # counters (``nonlocal``) live there. Globals are keyed by module
        # name already and are not walked.
        return [*(obj.__closure__ or ()), *obj.__dict__.values()]
    if isinstance(obj, types.CellType):
        try:
            return [obj.cell_contents]
        except ValueError:  # an empty cell
            return []
    if isinstance(obj, (list, tuple, collections_deque)):
        return list(obj)
    if isinstance(obj, dict):
        out: list[Any] = []
        for k, v in obj.items():
            out.append(k)
            out.append(v)
        return out
    if isinstance(obj, (set, frozenset)):
        # Set order follows hashes, which for plain objects are addresses:
        # only sets of values have a stable order.
        try:
            return sorted(obj)
        except TypeError:
            return []
    return None


collections_deque = deque
_BUILTIN_CONTAINERS = frozenset({list, tuple, dict, set, frozenset, deque, types.CellType, types.FunctionType})


def reachable(root: Any, limit: int = MAX_OBJECTS, *, upgrade_locks: bool = False) -> list[Any]:
    """Mutable objects reachable from ``root``, breadth-first, at most ``limit``.

    With ``upgrade_locks``, real locks that only an attribute refers to are
    made cooperative on the way (see ``_upgrade_locks``)."""
    seen: set[int] = set()
    order: list[Any] = []
    queue: deque[Any] = deque([root])
    while queue and len(order) < limit:
        obj = queue.popleft()
        if isinstance(obj, _LEAF_TYPES) or id(obj) in seen:
            continue
        seen.add(id(obj))
        order.append(obj)
        try:
            queue.extend(_children(obj, upgrade_locks))
        except Exception:
            continue
    return order
