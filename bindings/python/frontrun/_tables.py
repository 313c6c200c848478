"""The objects the native access classifier recognises by identity.

Passed once to ``_engine.init_tables``. Builtins listed here act on their
arguments (``setattr(obj, ...)``, ``sorted(xs)``) rather than on
``__self__``, so the classifier looks them up by identity.
"""

from __future__ import annotations

import _thread
import builtins
import collections
import functools
import operator
import types
from typing import Any

from frontrun import _engine

_done = False


def _builtin_specs() -> list[tuple[Any, str]]:
    specs: list[tuple[Any, str]] = [
        (builtins.setattr, "setattr"),
        (builtins.getattr, "getattr"),
        (builtins.delattr, "delattr"),
        (builtins.hasattr, "hasattr"),
        (builtins.len, "len"),
        (builtins.bool, "len"),
        (builtins.next, "next"),
        (builtins.iter, "iter"),
        (builtins.vars, "vars"),
        (operator.getitem, "getitem"),
        (operator.setitem, "setitem"),
        (operator.delitem, "delitem"),
        (functools.reduce, "reads_all_from_1"),
        (builtins.map, "reads_all_from_1"),
        (builtins.filter, "reads_all_from_1"),
    ]
    # Builtins and constructors that iterate every argument they get.
    for fn in (
        sorted,
        min,
        max,
        sum,
        any,
        all,
        list,
        tuple,
        set,
        frozenset,
        dict,
        enumerate,
        zip,
        reversed,
        str,
        repr,
        print,
    ):
        specs.append((fn, "reads_all"))
    return specs


def ensure_tables() -> None:
    global _done
    if _done:
        return
    d: dict[str, Any] = {}
    _engine.init_tables(
        {
            "list": list,
            "dict": dict,
            "set": set,
            "bytearray": bytearray,
            "deque": collections.deque,
            "defaultdict": collections.defaultdict,
            "real_lock": _thread.LockType,
            "real_rlock": _thread.RLock,
            "immutable": [str, bytes, int, float, bool, complex, tuple, frozenset, type(None), range, types.CodeType],
            "module": types.ModuleType,
            "type": type,
            "function": types.FunctionType,
            "method": types.MethodType,
            "builtin_function_or_method": types.BuiltinFunctionType,
            "method_descriptor": types.MethodDescriptorType,
            "wrapper_descriptor": types.WrapperDescriptorType,
            "method_wrapper": types.MethodWrapperType,
            "cell": types.CellType,
            "list_iterator": type(iter([])),
            "list_reverseiterator": type(reversed([])),
            "enumerate": enumerate,
            "dict_keys": type(d.keys()),
            "dict_values": type(d.values()),
            "dict_items": type(d.items()),
            "dict_iterators": [
                type(iter(d)),
                type(iter(d.values())),
                type(iter(d.items())),
                type(reversed(d)),
            ],
            "set_iterator": type(iter(set())),
            "builtins": _builtin_specs(),
        }
    )
    _done = True
