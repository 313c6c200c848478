"""Deterministic numbering of the shared state, before the threads start.

``setup()`` builds the same object graph in every execution, so walking it
breadth-first from the returned state (containers, instance attributes and
slots, the cells of functions' closures) visits objects in the same order
each time. The native side numbers them in that order, which makes the keys of
accesses to them identical across executions (see ``keys.rs``).

The walk runs before every execution and visits every reachable object,
touched by the workers or not, so it is kept cheap per object: what to do
with an object is decided once per type, and the insides of frontrun's own
locks are not walked.
"""

from __future__ import annotations

import _thread
import sys
import types
from collections import deque
from typing import Any

from frontrun import _coop

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
_REAL_LOCK_TYPES = frozenset(_REAL_LOCKS)


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
    for name, value in d.items():
        if type(value) not in _REAL_LOCKS or sys.getrefcount(value) > _ONLY_OWNER_REFS:
            continue
        if not value.acquire(False):
            continue
        value.release()
        cls = _coop.RLock if type(value) is _thread.RLock else _coop.Lock
        d[name] = cls(_real_only=False)


# How the walk reads the children of an object, decided once per type.
_LEAF = 0
_FUNCTION = 1
_CELL = 2
_SEQUENCE = 3
_DICT = 4
_SET = 5
#: ``(_INSTANCE, slot names, frontrun's own primitive)``: attributes and slots.
_INSTANCE = 6
#: A cooperative ``Lock``/``RLock``: numbered (its operations are
#: synchronisation steps keyed by it) but not walked into: what it holds is
#: frontrun's (its real lock, its owner), never touched by traced code.
_COOP_LOCK = 7
#: ``(_SUBCLASS, container plan, slot names, False)``: a subclass of a
#: container (a cache that is a ``dict`` with its lock as an attribute,
#: boltons' ``LRU``): its items, then its attributes and slots.
_SUBCLASS = 8

#: Plans by type. Bounded: classes made inside ``setup()`` are new types in
#: every execution, and the cache must not keep them all alive.
_plans: dict[type, Any] = {}
_MAX_PLANS = 1024


def _plan(t: type) -> Any:
    return _decide(lambda classes: issubclass(t, classes), t)


def _decide(is_a: Any, t: type) -> Any:
    """The plan of an object of type ``t`` for which ``is_a(classes)``
    says whether it is an instance of one of ``classes``."""
    if is_a(_LEAF_TYPES):
        return _LEAF
    if is_a(types.FunctionType):
        return _FUNCTION
    if is_a(types.CellType):
        return _CELL
    slots = tuple(slot for cls in t.__mro__ for slot in cls.__dict__.get("__slots__", ()) if isinstance(slot, str))
    for classes, container in (((list, tuple, deque), _SEQUENCE), (dict, _DICT), ((set, frozenset), _SET)):
        if is_a(classes):
            if t in (list, tuple, deque, dict, set, frozenset):
                return container
            return (_SUBCLASS, container, slots, False)
    if t in (_coop.Lock, _coop.RLock):
        return _COOP_LOCK
    return (_INSTANCE, slots, t.__module__ == "frontrun._coop")


def _children(obj: Any, plan: Any, upgrade_locks: bool) -> list[Any]:
    if plan is _FUNCTION:
        # A closure's cells hold state too: a decorator's cache, lock and
        # counters (``nonlocal``) live there. Globals are keyed by module
        # name already and are not walked.
        return [*(obj.__closure__ or ()), *obj.__dict__.values()]
    if plan is _CELL:
        try:
            return [obj.cell_contents]
        except ValueError:  # an empty cell
            return []
    if plan is _SEQUENCE:
        return list(obj)
    if plan is _DICT:
        out: list[Any] = []
        for k, v in obj.items():
            out.append(k)
            out.append(v)
        return out
    if plan is _SET:
        # Set order follows hashes, which for plain objects are addresses:
        # only sets of values have a stable order.
        try:
            return sorted(obj)
        except TypeError:
            return []
    if plan is _COOP_LOCK:
        outer = obj._frontrun_for  # the Event, Condition... it belongs to
        return [] if outer is None else [outer]
    out = []
    if plan[0] == _SUBCLASS:
        _, container, slots, own_primitive = plan
        out.extend(_children(obj, container, upgrade_locks))
    else:
        _, slots, own_primitive = plan
    d = getattr(obj, "__dict__", None)
    if isinstance(d, dict):
        # (Not inside frontrun's own primitives: their real lock is theirs.)
        # (No reference to a lock may be left behind when ``_upgrade_locks``
        # counts them: the types are compared in C.)
        if upgrade_locks and not own_primitive and not _REAL_LOCK_TYPES.isdisjoint(map(type, d.values())):
            _upgrade_locks(d)
        out.extend(d.values())
    for slot in slots:
        try:
            out.append(object.__getattribute__(obj, slot))
        except AttributeError:
            pass
    return out


def reachable(root: Any, limit: int = MAX_OBJECTS, *, upgrade_locks: bool = False) -> list[Any]:
    """Mutable objects reachable from ``root``, breadth-first, at most ``limit``.

    With ``upgrade_locks``, real locks that only an attribute refers to are
    made cooperative on the way (see ``_upgrade_locks``). What the walk
    does with an object is decided once per type (``_plan``), so an object
    of the program's own classes costs a dictionary lookup, the walk's
    bookkeeping and reading its attributes."""
    seen: set[int] = set()
    order: list[Any] = []
    queue: deque[Any] = deque([root])
    plans = _plans
    popleft, extend, append, mark = queue.popleft, queue.extend, order.append, seen.add
    count = 0
    while queue and count < limit:
        obj = popleft()
        t = type(obj)
        plan = plans.get(t)
        if plan is None:
            if len(plans) >= _MAX_PLANS:
                plans.clear()
            plan = plans[t] = _plan(t)
        if getattr(obj, "__class__", t) is not t:
            # A proxy that claims another class: decided as ``isinstance``
            # sees it, object by object.
            plan = _decide(lambda classes, obj=obj: isinstance(obj, classes), t)
        if plan is _LEAF or id(obj) in seen:
            continue
        mark(id(obj))
        append(obj)
        count += 1
        if plan is _COOP_LOCK:
            # (Inline, as the next case: locks and plain objects are most of
            # a large state.)
            outer = getattr(obj, "_frontrun_for", None)
            if outer is not None:
                queue.append(outer)
            continue
        try:
            if type(plan) is tuple and plan[0] == _INSTANCE and not plan[1]:
                # Attributes and no slots.
                d = getattr(obj, "__dict__", None)
                if isinstance(d, dict):
                    if upgrade_locks and not plan[2] and not _REAL_LOCK_TYPES.isdisjoint(map(type, d.values())):
                        _upgrade_locks(d)
                    extend(d.values())
            else:
                extend(_children(obj, plan, upgrade_locks))
        except Exception:
            continue
    return order
