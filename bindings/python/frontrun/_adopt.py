"""Cooperative stand-ins for real locks created before an exploration.

The cooperative classes (``frontrun._coop``) are only installed in
``threading`` while an exploration runs, so that a process in which nothing
explores keeps the real, C-implemented locks and pays nothing. A lock made
earlier, typically at import time (``LOCK = threading.Lock()`` at module
level, or ``self._lock`` of an object a module creates when imported), is
then a real lock, and two workers contending for it would stall the
exploration.

When the classes are installed, :func:`adopt` looks for such locks where
code keeps them: the globals of the program's modules (not the standard
library's, not frontrun's), the dictionaries of the classes those modules
define, and the ``__dict__`` of objects held in those globals. Each real
``Lock``/``RLock`` found there is replaced by a cooperative one that *wraps
the same real lock*, so a thread still holding the old reference (or holding
the lock itself) sees one lock, not two. :func:`restore` puts each original
back where the stand-in is still in place. Locks kept elsewhere (a closure,
a default argument, a list) stay real; docs/limits.md says so.
"""

from __future__ import annotations

import _thread
import os
import sys
from typing import Any

_LOCK_TYPE = _thread.LockType
_RLOCK_TYPE = _thread.RLock
_FRONTRUN_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_STDLIB_DIR = os.path.dirname(os.path.abspath(os.__file__)) + os.sep
_PACKAGES = "-packages" + os.sep

#: (namespace dict, key, stand-in, original) for every replacement made.
_replaced: list[tuple[dict[str, Any], str, Any, Any]] = []
#: Stand-ins by id of the real lock, so one real lock gets one stand-in
#: even when several names refer to it.
_standins: dict[int, Any] = {}


def _program_module(module: Any) -> bool:
    """Modules whose locks the cooperative classes would have covered had
    they been installed when the module was imported: the program's and
    installed packages', not the standard library's or frontrun's."""
    filename = getattr(module, "__file__", None)
    if not isinstance(filename, str):
        return False
    path = os.path.abspath(filename)
    if path.startswith(_FRONTRUN_DIR):
        return False
    return not path.startswith(_STDLIB_DIR) or _PACKAGES in path


def _standin(real: Any, coop: Any) -> Any:
    found = _standins.get(id(real))
    if found is not None and found._real is real:
        return found
    cls = coop.Lock if type(real) is _LOCK_TYPE else coop.RLock
    made = cls._wrapping(real)
    _standins[id(real)] = made
    return made


def _adopt_in(namespace: dict[str, Any], coop: Any) -> None:
    for key, value in list(namespace.items()):
        kind = type(value)
        if kind is _LOCK_TYPE or kind is _RLOCK_TYPE:
            made = _standin(value, coop)
            namespace[key] = made
            _replaced.append((namespace, key, made, value))


def adopt(coop: Any) -> None:
    """Replace the real locks found in the program's namespaces (see the
    module docstring). Called once per installation of the classes."""
    modules = []
    for name, module in list(sys.modules.items()):
        known = _kept.get(name)
        if known is None or known[0] is not module:
            known = _kept[name] = (module, module is not None and _program_module(module))
        if known[1]:
            modules.append(module)
    names = {m.__name__ for m in modules}
    # What to do with a value, by its type: 0 nothing, 1 a lock, 2 a class,
    # 3 an instance of one of the program's classes.
    action: dict[type, int] = {_LOCK_TYPE: 1, _RLOCK_TYPE: 1}
    for module in modules:
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict):
            continue
        own = module.__name__
        for key, value in list(namespace.items()):
            kind = type(value)
            todo = action.get(kind)
            if todo is None:
                todo = action[kind] = 2 if issubclass(kind, type) else 3 if kind.__module__ in names else 0
            if todo == 0:
                continue
            if todo == 1:
                made = _standin(value, coop)
                namespace[key] = made
                _replaced.append((namespace, key, made, value))
            elif todo == 2:
                if value.__dict__.get("__module__") == own:
                    _adopt_class(value, coop)
            else:
                # Only the instance's own dictionary, read without running
                # any of its code (a proxy's __getattr__, a property).
                try:
                    inner = object.__getattribute__(value, "__dict__")
                except Exception:  # no __dict__ (slots), or a proxy that refuses
                    continue
                if type(inner) is dict:
                    _adopt_in(inner, coop)


#: Per module name: the module object last seen and whether it is the
#: program's (a module's file does not change; a replaced module is rechecked).
_kept: dict[str, tuple[Any, bool]] = {}


#: Classes found without a lock, with the size of their namespace then
#: (checked again when it changes).
_lockless: dict[type, int] = {}


def _adopt_class(cls: type, coop: Any) -> None:
    namespace = vars(cls)
    if _lockless.get(cls) == len(namespace):
        return
    found = False
    for key, value in list(namespace.items()):
        kind = type(value)
        if kind is _LOCK_TYPE or kind is _RLOCK_TYPE:
            made = _standin(value, coop)
            try:
                setattr(cls, key, made)
            except (AttributeError, TypeError):
                continue
            _replaced.append((_ClassNamespace(cls), key, made, value))
            found = True
    if not found:
        _lockless[cls] = len(namespace)


class _ClassNamespace(dict):  # type: ignore[type-arg]
    """Lets :func:`restore` treat a class like a namespace dict."""

    def __init__(self, cls: type) -> None:
        super().__init__()
        self.cls = cls

    def get(self, key: str, default: Any = None) -> Any:
        return vars(self.cls).get(key, default)

    def __setitem__(self, key: str, value: Any) -> None:
        setattr(self.cls, key, value)


def restore() -> None:
    """Put every original lock back where its stand-in still is."""
    while _replaced:
        namespace, key, made, original = _replaced.pop()
        if namespace.get(key) is made:
            namespace[key] = original
    _standins.clear()
