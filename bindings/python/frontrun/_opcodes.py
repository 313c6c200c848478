"""Bytecode classification, done once per code object.

The tracer in ``frontrun._engine`` asks this module, the first time an
exploration meets a code object, which of its instructions can touch shared state. The answer is
a list of ``(offset, kind, arg, name)`` rows; the Rust side turns it into a
table indexed by instruction offset, so that the per-instruction work is one
array lookup. ``dis`` does the decoding (EXTENDED_ARG, oparg flags, the
opcode renumbering between versions), which keeps this file the only place
that knows opcode names. The answer is kept with the code object
(``frontrun._code``), so later explorations and replays in the same process
do not disassemble it again.

``kind`` values must match ``OpKind`` in ``bindings/src/codeinfo.rs``.
"""

from __future__ import annotations

import dis
import sys
import types

from frontrun import _engine
from frontrun._code import classified

_PY = sys.version_info[:2]

# Kinds of visible instructions, numbered by the native module (its
# ``OpKind``, exported as ``_engine.OPKINDS``). Where the operands sit on
# the value stack is noted for each; "TOS" is the top of stack just before
# the instruction runs.
_KIND = _engine.OPKINDS
LOAD_ATTR: int = _KIND["LOAD_ATTR"]  # TOS = owner
STORE_ATTR: int = _KIND["STORE_ATTR"]  # TOS = owner, TOS1 = value
DELETE_ATTR: int = _KIND["DELETE_ATTR"]  # TOS = owner
SUBSCR_READ: int = _KIND["SUBSCR_READ"]  # TOS = key, TOS1 = container
SUBSCR_WRITE: int = _KIND["SUBSCR_WRITE"]  # TOS = key, TOS1 = container, TOS2 = value
SUBSCR_DELETE: int = _KIND["SUBSCR_DELETE"]  # TOS = key, TOS1 = container
SLICE_READ: int = _KIND["SLICE_READ"]  # TOS = stop, TOS1 = start, TOS2 = container (3.12+)
SLICE_WRITE: int = _KIND["SLICE_WRITE"]  # TOS = stop, TOS1 = start, TOS2 = container, TOS3 = value (3.12+)
GLOBAL_READ: int = _KIND["GLOBAL_READ"]  # name = variable
GLOBAL_WRITE: int = _KIND["GLOBAL_WRITE"]
DEREF_READ: int = _KIND["DEREF_READ"]  # arg = index of the cell in the frame's fast locals
DEREF_WRITE: int = _KIND["DEREF_WRITE"]
CALL: int = _KIND["CALL"]  # arg = number of arguments on the stack (positional + keyword)
CALL_KW: int = _KIND["CALL_KW"]  # 3.13: as CALL, with the keyword-names tuple on top
CALL_EX: int = _KIND["CALL_EX"]  # arg = flags; callable, args tuple (and kwargs dict) on the stack
GET_ITER: int = _KIND["GET_ITER"]  # TOS = iterable
FOR_ITER: int = _KIND["FOR_ITER"]  # TOS = iterator
CONTAINS: int = _KIND["CONTAINS"]  # TOS = container, TOS1 = item
INPLACE: int = _KIND["INPLACE"]  # TOS = right operand, TOS1 = left operand (mutated in place)
READ_ALL: int = _KIND["READ_ALL"]  # TOS = a container read as a whole (unpacking, [*x], {**x})
CALL_PLAIN: int = _KIND["CALL_PLAIN"]  # 3.10 CALL_FUNCTION: callable below its arg arguments, no method slot
CALL_PLAIN_KW: int = _KIND["CALL_PLAIN_KW"]  # 3.10 CALL_FUNCTION_KW: as CALL_PLAIN, keyword-names tuple on top
# TOS tested for truth or length (if xs:, not xs, match's GET_LEN): reads a
# container's shape.
TRUTH: int = _KIND["TRUTH"]
READ_BOTH: int = _KIND["READ_BOTH"]  # TOS and TOS1 read as wholes (comparisons, xs + ys)
READ_ALL_1: int = _KIND["READ_ALL_1"]  # TOS1 read as a whole (MATCH_KEYS: the subject under the keys tuple)
ENTER: int = _KIND["ENTER"]  # TOS = the context manager of a ``with`` statement, about to be entered

_SIMPLE = {
    "LOAD_ATTR": LOAD_ATTR,
    "LOAD_METHOD": LOAD_ATTR,
    "STORE_ATTR": STORE_ATTR,
    "DELETE_ATTR": DELETE_ATTR,
    "BINARY_SUBSCR": SUBSCR_READ,
    "STORE_SUBSCR": SUBSCR_WRITE,
    "DELETE_SUBSCR": SUBSCR_DELETE,
    "BINARY_SLICE": SLICE_READ,
    "STORE_SLICE": SLICE_WRITE,
    "LOAD_GLOBAL": GLOBAL_READ,
    "STORE_GLOBAL": GLOBAL_WRITE,
    "DELETE_GLOBAL": GLOBAL_WRITE,
    "LOAD_DEREF": DEREF_READ,
    "LOAD_CLASSDEREF": DEREF_READ,
    "LOAD_FROM_DICT_OR_DEREF": DEREF_READ,
    "STORE_DEREF": DEREF_WRITE,
    "DELETE_DEREF": DEREF_WRITE,
    "CALL": CALL,
    "CALL_METHOD": CALL,
    "CALL_FUNCTION": CALL_PLAIN,
    "CALL_FUNCTION_KW": CALL_PLAIN_KW,
    "CALL_KW": CALL_KW,
    "CALL_FUNCTION_EX": CALL_EX,
    "GET_ITER": GET_ITER,
    "FOR_ITER": FOR_ITER,
    "CONTAINS_OP": CONTAINS,
    "UNPACK_SEQUENCE": READ_ALL,
    "UNPACK_EX": READ_ALL,
    "LIST_EXTEND": READ_ALL,
    "SET_UPDATE": READ_ALL,
    "DICT_UPDATE": READ_ALL,
    "DICT_MERGE": READ_ALL,
    "POP_JUMP_IF_TRUE": TRUTH,
    "POP_JUMP_IF_FALSE": TRUTH,
    "POP_JUMP_FORWARD_IF_TRUE": TRUTH,
    "POP_JUMP_FORWARD_IF_FALSE": TRUTH,
    "POP_JUMP_BACKWARD_IF_TRUE": TRUTH,
    "POP_JUMP_BACKWARD_IF_FALSE": TRUTH,
    "JUMP_IF_TRUE_OR_POP": TRUTH,
    "JUMP_IF_FALSE_OR_POP": TRUTH,
    "UNARY_NOT": TRUTH,
    "TO_BOOL": TRUTH,
    "GET_LEN": TRUTH,
    "COMPARE_OP": READ_BOTH,
    "MATCH_KEYS": READ_ALL_1,
    "BEFORE_WITH": ENTER,
    "SETUP_WITH": ENTER,
}

# In-place operators mutate a mutable left operand (``lst += other``).
_INPLACE_BINARY_OP_ARGS = frozenset(i for i, (name, _) in enumerate(getattr(dis, "_nb_ops", ())) if "INPLACE" in name)


def _kind_of(instr: dis.Instruction) -> int:
    name = instr.opname
    kind = _SIMPLE.get(name, 0)
    if kind:
        return kind
    if name == "BINARY_OP":
        return INPLACE if instr.arg in _INPLACE_BINARY_OP_ARGS else READ_BOTH
    if name.startswith("INPLACE_"):  # 3.10
        return INPLACE
    if name.startswith("BINARY_") and name not in ("BINARY_SUBSCR", "BINARY_SLICE"):  # 3.10 BINARY_ADD, ...
        return READ_BOTH
    return 0


_STOPS = frozenset(
    {
        "JUMP_FORWARD",
        "JUMP_BACKWARD",
        "JUMP_ABSOLUTE",
        "JUMP",
        "JUMP_NO_INTERRUPT",
        "JUMP_BACKWARD_NO_INTERRUPT",
        "RETURN_VALUE",
        "RETURN_CONST",
        "RAISE_VARARGS",
        "RERAISE",
    }
)


def _stack_depths(code: types.CodeType, instrs: list[dis.Instruction]) -> dict[int, int]:
    """Value-stack depth before each reachable instruction.

    CPython's compiler guarantees one depth per instruction offset, which
    lets the tracer find an instruction's operands at a fixed position above
    the fast locals, whatever the interpreter publishes in the frame.
    """
    index = {ins.offset: i for i, ins in enumerate(instrs)}
    depth: dict[int, int] = {}
    work: list[tuple[int, int]] = [(0, 0)]
    parse = getattr(dis, "_parse_exception_table", None)
    if parse is not None:
        for entry in parse(code):
            work.append((entry.target, entry.depth + (1 if entry.lasti else 0) + 1))
    while work:
        offset, d = work.pop()
        i = index.get(offset)
        while i is not None and i < len(instrs):
            ins = instrs[i]
            if ins.offset in depth:
                break
            depth[ins.offset] = d
            arg = ins.arg if ins.opcode >= dis.HAVE_ARGUMENT else None
            target = ins.argval if ins.opcode in _JUMPS and isinstance(ins.argval, int) else None
            if target is not None:
                work.append((target, d + dis.stack_effect(ins.opcode, arg, jump=True)))
            if ins.opname in _STOPS:
                break
            d += _effect(ins, arg)
            i += 1
    return depth


def _effect(ins: dis.Instruction, arg: int | None) -> int:
    # 3.11's dis charges PRECALL with popping the arguments, but the stack
    # only shrinks when CALL runs; the operands of CALL must still be there.
    if ins.opname == "PRECALL":
        return 0
    # A generator's frame starts suspended; every resumption, the first one
    # included, pushes the value sent in (popped by the POP_TOP that
    # follows). 3.11 and 3.12's dis count 0, which would put every operand of
    # a generator body one slot too low.
    if ins.opname == "RETURN_GENERATOR":
        return 1
    # 3.10 has no RETURN_GENERATOR: the frame starts with that value on the
    # stack and GEN_START pops it, so from a start at depth 0 it moves
    # nothing (dis's -1 would put every later operand one slot too low, and
    # below the stack's base).
    if ins.opname == "GEN_START":
        return 0
    if ins.opname == "CALL" and _PY == (3, 11):
        return -(ins.arg or 0) - 1
    return dis.stack_effect(ins.opcode, arg, jump=False)


_JUMPS = frozenset(dis.hasjrel) | frozenset(dis.hasjabs)


def nlocalsplus(code: types.CodeType) -> int:
    """Number of fast-local slots (locals, cells, free variables) below the stack."""
    if _PY < (3, 11):
        return code.co_nlocals + len(code.co_cellvars) + len(code.co_freevars)
    # 3.11+: a cell for an argument shares the argument's slot.
    cells = [c for c in code.co_cellvars if c not in code.co_varnames]
    return len(code.co_varnames) + len(cells) + len(code.co_freevars)


def classify(code: types.CodeType) -> tuple[int, list[tuple[int, int, int, str | None, int]]]:
    """The visible instructions of ``code`` (see ``_classify``), computed
    once per code object. The rows are shared: read them, do not change them."""
    return classified(code, _classify)  # type: ignore[no-any-return]


def _classify(code: types.CodeType) -> tuple[int, list[tuple[int, int, int, str | None, int]]]:
    """The visible instructions of ``code``.

    Returns ``(nlocalsplus, rows)``; each row is ``(offset, kind, arg, name,
    depth)``: ``arg`` is the instruction's operand (after ``EXTENDED_ARG``)
    for calls and cell accesses, ``name`` the attribute or global name where
    there is one, ``depth`` the stack depth before the instruction.
    """
    kwargs = {"show_caches": False} if _PY >= (3, 11) else {}
    instrs = list(dis.get_instructions(code, **kwargs))
    depths = _stack_depths(code, instrs)
    rows = []
    for instr in instrs:
        kind = _kind_of(instr)
        if not kind or instr.offset not in depths:
            continue
        name = instr.argval if kind in (LOAD_ATTR, STORE_ATTR, DELETE_ATTR, GLOBAL_READ, GLOBAL_WRITE) else None
        arg = instr.arg if instr.arg is not None else 0
        if kind in (DEREF_READ, DEREF_WRITE) and _PY < (3, 11):
            arg += code.co_nlocals  # 3.10 numbers cells after the locals
        rows.append((instr.offset, kind, arg, name, depths[instr.offset]))
    return nlocalsplus(code), rows
