"""Tables read after a transaction's snapshot, as the preload library learns them.

Under REPEATABLE READ and SERIALIZABLE, the statement that takes a
transaction's snapshot is ordered against commits to the tables it touches.
A table the transaction reads only later was not part of that ordering, so
the library records it as a hint (every later snapshot is also ordered
against it) and bumps a generation counter. An exploration during which the
counter moved ran with an incomplete ordering: :func:`frontrun.explore_dpor`
then explores again from the start (see ``frontrun_wire::snapshot``, wire/src/snapshot.rs).
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["generation", "reset"]

_functions: tuple[Callable[[], int], Callable[[], None]] | None = None
_looked_up = False


def _lookup() -> tuple[Callable[[], int], Callable[[], None]] | None:
    global _functions, _looked_up
    if not _looked_up:
        _looked_up = True
        import ctypes  # only for explorations that read native events

        try:
            process = ctypes.CDLL(None)
            gen = process.frontrun_io_snapshot_generation
            rst = process.frontrun_io_snapshot_reset
        except (AttributeError, OSError):
            return None
        gen.restype = ctypes.c_uint
        gen.argtypes = []
        rst.restype = None
        rst.argtypes = []
        _functions = (gen, rst)
    return _functions


def reset() -> int | None:
    """Forget the hints; the generation after that, or None without the library."""
    functions = _lookup()
    if functions is None:
        return None
    functions[1]()
    return int(functions[0]())


def generation() -> int | None:
    functions = _lookup()
    return None if functions is None else int(functions[0]())
