"""A debugger started inside a worker (``breakpoint()``, ``pdb.set_trace()``).

During explorations ``sys.settrace`` is wrapped: after the real one ran,
the binding puts frontrun's trace function back in front of the new one in
a worker (3.10/3.11, where both are per-thread trace functions), so the
debugger gets its call, line and return events but never frontrun's opcode
events, and the worker stays under the scheduler. When the new function
belongs to a ``bdb.Bdb`` (pdb and the debuggers built on it), the clocks of
``timeout_per_run`` and ``deadlock_timeout`` stand still until it is unset,
so time at the prompt never ends an execution.
"""

from __future__ import annotations

import _thread
import sys
from typing import Any

from frontrun import _engine

_real = sys.settrace
_install_lock = _thread.allocate_lock()
_install_count = 0


def _is_debugger(function: Any) -> bool:
    bdb = sys.modules.get("bdb")
    return bdb is not None and isinstance(getattr(function, "__self__", None), bdb.Bdb)


#: On 3.13, frontrun's instruction events stop arriving once pdb has been
#: active in a worker (cause not found; 3.10 to 3.12 are fine): such an
#: execution is reported as not checked. Set here, read and cleared by
#: ``take_hidden``.
_HIDES_EVENTS = sys.version_info >= (3, 13)
_hidden = False


def take_hidden() -> bool:
    """Whether a debugger that hides frontrun's events was set since the
    last call."""
    global _hidden
    was, _hidden = _hidden, False
    return was


def settrace(function: Any, /) -> None:
    global _hidden
    # Nothing written in Python may run after the real call: its events
    # would go to the debugger, which would stop in here.
    debugger = _is_debugger(function)
    if debugger and _HIDES_EVENTS:
        _hidden = True
    _real(function)
    _engine.trace_function_set(debugger)


settrace.__doc__ = sys.settrace.__doc__


def install() -> None:
    """Put the wrapper in ``sys``. Calls nest."""
    global _install_count, _real
    with _install_lock:
        if _install_count == 0:
            _real = sys.settrace
            sys.settrace = settrace
        _install_count += 1


def uninstall() -> None:
    """Undo one ``install()``; the real function returns when none is left."""
    global _install_count
    with _install_lock:
        if _install_count == 0:
            return
        _install_count -= 1
        if _install_count == 0:
            sys.settrace = _real
