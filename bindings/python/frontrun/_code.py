"""What frontrun reads off a code object, computed once per code object.

Explanations, reports and messages name a step by its source line, and
some name an access by its instruction (``closure variable 'x'``); the
tracer's table of visible instructions comes from disassembling the code.
Each of these is derived once per code object and kept while the code
object lives, so that a second exploration, a replay or a second failure
in the same process reuses it instead of walking the line table or
disassembling again.
"""

from __future__ import annotations

import types
import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import dis


class _Facts:
    __slots__ = ("classified", "instructions", "lines")

    def __init__(self) -> None:
        self.lines: dict[int, int] | None = None
        self.instructions: dict[int, dis.Instruction] | None = None
        self.classified: Any = None


#: id(code) -> (weak reference to the code object, what is known of it).
_known: dict[int, tuple[weakref.ref[types.CodeType], _Facts]] = {}


def _facts(code: types.CodeType) -> _Facts:
    key = id(code)
    entry = _known.get(key)
    if entry is not None and entry[0]() is code:
        return entry[1]
    facts = _Facts()
    # The entry goes with the code object (its address may then be reused).
    _known[key] = (weakref.ref(code, lambda _ref: _known.pop(key, None)), facts)
    return facts


def line_of(code: types.CodeType | None, offset: int) -> int:
    """The source line of the instruction at ``offset`` in ``code`` (0 when
    it has none, or without a code object)."""
    if code is None:
        return 0
    facts = _facts(code)
    lines = facts.lines
    if lines is None:
        lines = {}
        for start, end, line in code.co_lines():
            if line is not None:
                for at in range(start, end, 2):
                    lines.setdefault(at, line)
        facts.lines = lines
    return lines.get(offset, 0)


def instruction_at(code: types.CodeType | None, offset: int) -> dis.Instruction | None:
    """The instruction at ``offset`` in ``code``, or None."""
    if code is None:
        return None
    return instructions(code).get(offset)


def instructions(code: types.CodeType) -> dict[int, dis.Instruction]:
    """The instructions of ``code`` by offset, in order (no caches)."""
    facts = _facts(code)
    found = facts.instructions
    if found is None:
        import dis

        found = {instr.offset: instr for instr in dis.get_instructions(code)}
        facts.instructions = found
    return found


def classified(code: types.CodeType, classify: Any) -> Any:
    """``classify(code)`` (the tracer's table of visible instructions,
    ``frontrun._opcodes.classify``), computed once per code object."""
    facts = _facts(code)
    if facts.classified is None:
        facts.classified = classify(code)
    return facts.classified
