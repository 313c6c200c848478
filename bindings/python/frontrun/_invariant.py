"""Calling an invariant: it returns a bool, or checks with ``assert``.

An ``AssertionError`` from the invariant is a failure like ``False``, and the
explorer keeps it so that ``assert_holds()`` can raise the user's own
assertion. ``None`` is a pass only from an invariant that asserts: from any
other it is a forgotten ``return``, which would otherwise make every
execution pass (or fail) without a word.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

from frontrun._code import instructions


def check_invariant(invariant: Callable[[Any], bool], state: Any) -> tuple[bool, AssertionError | None]:
    """An invariant may return a bool or check with ``assert``: an
    ``AssertionError`` is a failure like ``False`` (other exceptions are bugs
    and propagate), and ``None`` from an invariant that asserts is a pass."""
    __tracebackhide__ = True  # pytest shows the invariant's assert, not this frame
    try:
        value = invariant(state)
    except AssertionError as exc:
        return False, exc
    if isinstance(value, types.CoroutineType):
        value.close()
        raise TypeError("invariant returned a coroutine; frontrun does not await it (give a synchronous callable)")
    if value is None:
        if asserts(invariant):
            return True, None
        raise TypeError(
            "invariant returned None; return a bool, or check with assert statements (which python -O removes)"
        )
    return bool(value), None


def asserts(fn: Any) -> bool:
    """Whether ``fn``'s own code contains an ``assert`` statement."""
    code = getattr(fn, "__code__", None)
    if code is None and callable(fn):
        code = getattr(type(fn).__call__, "__code__", None)
    if not isinstance(code, types.CodeType):
        return False
    # A plain assert loads AssertionError with its own opcode; pytest's
    # rewritten asserts name it as a global.
    return any(
        instr.opname == "LOAD_ASSERTION_ERROR" or (instr.opname == "LOAD_GLOBAL" and instr.argval == "AssertionError")
        for instr in instructions(code).values()
    )
