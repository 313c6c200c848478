"""Deterministic numbering of the shared state, before the threads start.

``setup()`` builds the same object graph in every execution, so walking it
breadth-first from the returned state (containers, instance attributes and
slots, the cells of functions' closures) visits objects in the same order
each time. The native side numbers them in that order, which makes the keys of
accesses to them identical across executions (see ``keys.rs``).
"""

from __future__ import annotations

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


def _children(obj: Any) -> list[Any]:
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
    out = []
    d = getattr(obj, "__dict__", None)
    if isinstance(d, dict):
        out.extend(d.values())
    for cls in type(obj).__mro__:
        for slot in cls.__dict__.get("__slots__", ()):
            if isinstance(slot, str):
                try:
                    out.append(object.__getattribute__(obj, slot))
                except AttributeError:
                    pass
    return out


collections_deque = deque


def reachable(root: Any, limit: int = MAX_OBJECTS) -> list[Any]:
    """Mutable objects reachable from ``root``, breadth-first, at most ``limit``."""
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
            queue.extend(_children(obj))
        except Exception:
            continue
    return order
