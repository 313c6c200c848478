"""A worker that installs its own trace function.

``sys.settrace`` in a worker (pdb, a profiler written in Python) stays
behind frontrun's trace function during explorations: frontrun wraps
``sys.settrace``, so on 3.10/3.11 the worker is still traced and the new
function gets its call and line events; on 3.12+ frontrun's events come
from ``sys.monitoring`` anyway. A trace function set from C
(``PyEval_SetTrace``) goes past that wrapper and takes frontrun's events on
3.10/3.11: what the worker did afterwards was not seen, so the result is
inconclusive, never a pass."""

from __future__ import annotations

import ctypes
import sys
from typing import Any

from _helpers import explore


class Counter:
    def __init__(self) -> None:
        self.value = 0


events: list[str] = []


def _listening(frame: Any, event: str, arg: Any) -> Any:
    events.append(event)
    return _listening


def _increment_after_settrace(c: Counter) -> None:
    sys.settrace(_listening)
    try:
        current = c.value
        c.value = current + 1
    finally:
        sys.settrace(None)


def _increment_after_c_settrace(c: Counter) -> None:
    ctypes.pythonapi.PyEval_SetTrace(None, None)
    current = c.value
    c.value = current + 1


def _increment(c: Counter) -> None:
    current = c.value
    c.value = current + 1


def test_a_worker_that_sets_a_trace_function_is_still_explored() -> None:
    events.clear()
    result = explore(Counter, [_increment_after_settrace, _increment], lambda c: c.value == 2)
    assert result.verdict == "race"
    assert result.inconclusive == []
    # The worker's own trace function got its events, and no opcode event.
    assert "call" in events and "line" in events and "opcode" not in events


def test_a_trace_function_set_from_c_does_not_pass_a_lost_update() -> None:
    result = explore(Counter, [_increment_after_c_settrace, _increment], lambda c: c.value == 2)
    if sys.version_info >= (3, 12):
        assert result.verdict == "race"
    else:
        # (It used to hold: the worker ran unseen after the tracer went.)
        assert result.verdict == "inconclusive" and result.property_holds is None
        [(_, why)] = result.inconclusive
        assert "thread 0 replaced frontrun's trace function" in why
