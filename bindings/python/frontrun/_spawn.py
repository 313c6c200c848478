"""Threads that an explored worker starts, which frontrun does not explore.

A thread started by a worker (``threading.Thread.start``,
``_thread.start_new_thread``, work handed to a ``ThreadPoolExecutor``)
runs outside the scheduler and untraced: a race between it and anything
else is never seen. During explorations the functions that start threads
are wrapped, and a worker that calls one has the call noted; the execution
is then reported as not checked, naming the place, instead of passing
(docs/limits.md).
"""

from __future__ import annotations

import _thread
import sys
import threading
from types import FrameType
from typing import Any

_local = _thread._local()
_install_lock = _thread.allocate_lock()
_install_count = 0
_saved: list[tuple[Any, str, Any]] = []

_SKIP = ("threading", "concurrent.futures", "frontrun", "_thread", "asyncio")


def enter(sink: list[str]) -> None:
    """The calling worker's thread starts go into ``sink``."""
    _local.sink = sink


def leave() -> None:
    _local.sink = None


def _where() -> str:
    frame: FrameType | None = sys._getframe(2)
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if not any(name == p or name.startswith(p + ".") for p in _SKIP):
            return f"{frame.f_code.co_filename.rpartition('/')[2]}:{frame.f_lineno} in {frame.f_code.co_name}"
        frame = frame.f_back
    return "an unknown place"


def _note(what: str) -> None:
    sink = getattr(_local, "sink", None)
    if sink is not None and not sink:
        sink.append(f"{what} at {_where()}")


def _wrap(real: Any, what: str) -> Any:
    def start(*args: Any, **kwargs: Any) -> Any:
        _note(what)
        return real(*args, **kwargs)

    start.__wrapped__ = real  # type: ignore[attr-defined]
    return start


def _plan() -> list[tuple[Any, str, str]]:
    from concurrent.futures import thread as _futures_thread

    plan: list[tuple[Any, str, str]] = [(_thread, "start_new_thread", "_thread.start_new_thread")]
    for name in ("_start_new_thread", "_start_joinable_thread"):
        if hasattr(threading, name):
            plan.append((threading, name, "threading.Thread.start"))
    plan.append((_futures_thread.ThreadPoolExecutor, "submit", "ThreadPoolExecutor.submit"))
    return plan


def install() -> None:
    """Wrap the functions that start threads. Calls nest."""
    global _install_count
    with _install_lock:
        if _install_count == 0:
            for owner, name, what in _plan():
                real = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
                _saved.append((owner, name, real))
                setattr(owner, name, _wrap(real, what))
        _install_count += 1


def uninstall() -> None:
    """Undo one ``install()``; the real functions return when none is left."""
    global _install_count
    with _install_lock:
        if _install_count == 0:
            return
        _install_count -= 1
        if _install_count == 0:
            for owner, name, real in reversed(_saved):
                setattr(owner, name, real)
            _saved.clear()
