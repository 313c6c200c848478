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


_monitoring: Any = getattr(sys, "monitoring", None)


#: frontrun's ``sys.monitoring`` tool id while registered (3.12+), kept
#: by ``_run._Tracing``.
monitoring_tool: int | None = None


def settrace(function: Any, /) -> None:
    # Nothing written in Python may run after the real call: its events
    # would go to the debugger, which would stop in here.
    debugger = _is_debugger(function)
    tool = monitoring_tool
    _real(function)
    _engine.trace_function_set(debugger)
    if tool is not None:
        # Setting or unsetting a trace function re-instruments the code
        # (3.12+ build sys.settrace on sys.monitoring), and the running
        # code can lose other tools' instruction events: after 3.13's pdb
        # had been active in a worker, none of frontrun's arrived for the
        # rest of the execution, which then passed unchecked. Setting
        # frontrun's events again restores them.
        _monitoring.set_events(tool, 0)
        _monitoring.set_events(tool, _monitoring.events.INSTRUCTION)


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
