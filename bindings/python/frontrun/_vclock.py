"""Virtual time for the explored threads.

While an exploration runs, ``time.sleep``, ``time.monotonic``,
``time.time``, ``time.perf_counter`` (and their ``_ns`` forms) are replaced
by functions that, in a worker of an execution with virtual time, read and
advance that execution's clock instead of the machine's, and elsewhere (the
main thread, ``setup()``, the invariant, threads the workers start) call the
real ones:

* ``sleep(s)`` costs no wall time: the clock moves on by ``s`` and the
  worker's step ends in a yield (``_engine.coop_yield``), so the explorer's
  free choice goes to another thread and switching to one is no
  preemption. Which orders are explored does not change: the order of
  conflicting accesses is what the search varies, and a sleep touches
  nothing.
* the clock reads start at the machine's readings at the execution's start
  and advance by the sleeps, plus one microsecond per reading, so that a
  loop that waits for a deadline without sleeping still reaches it, and
  two readings never return the same value. Each execution (and each
  replay of it) sees the same times for the same schedule.

Code that bound the real functions before the exploration (``from time
import sleep`` at import) keeps them; so do C extensions.
"""

from __future__ import annotations

import _thread
import math
import threading
import time
from typing import Any

from frontrun import _engine

_real_sleep = time.sleep
_real_monotonic = time.monotonic
_real_monotonic_ns = time.monotonic_ns
_real_time = time.time
_real_time_ns = time.time_ns
_real_perf_counter = time.perf_counter
_real_perf_counter_ns = time.perf_counter_ns

#: Virtual seconds each clock reading moves the clock on by.
READ_TICK = 1e-6


class Clock:
    """One execution's virtual clock, shared by its workers (who only run
    one at a time, so no lock is needed)."""

    __slots__ = ("elapsed", "monotonic0", "perf0", "wall0")

    def __init__(self) -> None:
        self.elapsed = 0.0
        self.monotonic0 = _real_monotonic()
        self.wall0 = _real_time()
        self.perf0 = _real_perf_counter()

    def read(self) -> float:
        self.elapsed += READ_TICK
        return self.elapsed


_local = threading.local()


def enter(clock: Clock | None) -> None:
    """The calling worker runs on ``clock`` (None: on real time)."""
    _local.clock = clock


def leave() -> None:
    _local.clock = None


def _clock() -> Clock | None:
    return getattr(_local, "clock", None)


def _seconds(secs: Any) -> float:
    """``secs`` as ``time.sleep`` would take it, with its errors."""
    if isinstance(secs, float):
        value = secs
    elif isinstance(secs, int):
        value = float(secs)
    else:
        to_float = getattr(type(secs), "__float__", None)
        if to_float is None or isinstance(secs, (str, bytes)):
            raise TypeError(f"'{type(secs).__name__}' object cannot be interpreted as an integer or float")
        value = float(to_float(secs))
    if math.isnan(value):
        raise ValueError("Invalid value NaN (not a number)")
    if value < 0:
        raise ValueError("sleep length must be non-negative")
    return value


def sleep(secs: float, /) -> None:
    clock = _clock()
    if clock is None:
        _real_sleep(secs)
        return
    clock.elapsed += _seconds(secs)
    _engine.coop_yield()


def monotonic() -> float:
    clock = _clock()
    return _real_monotonic() if clock is None else clock.monotonic0 + clock.read()


def monotonic_ns() -> int:
    clock = _clock()
    return _real_monotonic_ns() if clock is None else int((clock.monotonic0 + clock.read()) * 1e9)


def time_() -> float:
    clock = _clock()
    return _real_time() if clock is None else clock.wall0 + clock.read()


def time_ns() -> int:
    clock = _clock()
    return _real_time_ns() if clock is None else int((clock.wall0 + clock.read()) * 1e9)


def perf_counter() -> float:
    clock = _clock()
    return _real_perf_counter() if clock is None else clock.perf0 + clock.read()


def perf_counter_ns() -> int:
    clock = _clock()
    return _real_perf_counter_ns() if clock is None else int((clock.perf0 + clock.read()) * 1e9)


_REPLACEMENTS = {
    "sleep": sleep,
    "monotonic": monotonic,
    "monotonic_ns": monotonic_ns,
    "time": time_,
    "time_ns": time_ns,
    "perf_counter": perf_counter,
    "perf_counter_ns": perf_counter_ns,
}
_ORIGINAL = {name: getattr(time, name) for name in _REPLACEMENTS}

_install_lock = _thread.allocate_lock()
_install_count = 0


def install() -> None:
    """Put the virtual-time functions in ``time``. Calls nest."""
    global _install_count
    with _install_lock:
        if _install_count == 0:
            for name, fn in _REPLACEMENTS.items():
                setattr(time, name, fn)
        _install_count += 1


def uninstall() -> None:
    """Undo one ``install()``; the real functions return when none is left."""
    global _install_count
    with _install_lock:
        if _install_count == 0:
            return
        _install_count -= 1
        if _install_count == 0:
            for name, fn in _ORIGINAL.items():
                setattr(time, name, fn)
