"""Garbage collection does not run traced finalizers inside an execution.

A collection runs the ``__del__`` of what it frees in whichever thread
allocated past the threshold: inside an execution that would be a worker,
at a moment no schedule controls, running traced code (a library
connection's ``__del__``). The explorer defers automatic collection until
the workers are done.
"""

from __future__ import annotations

import gc

from _helpers import explore_all

finalized = 0


class Cyclic:
    """Freed only by the cycle collector; its finalizer writes a global."""

    def __init__(self) -> None:
        self.me = self

    def __del__(self) -> None:
        global finalized
        finalized += 1


class State:
    def __init__(self) -> None:
        self.seen = -1
        # Garbage for the collector, left by setup() (as a previous
        # execution's objects are).
        for _ in range(5):
            Cyclic()


def allocate(_s: State) -> None:
    junk = [[n] for n in range(3000)]  # past the gen-0 threshold below
    del junk


def read_the_global(s: State) -> None:
    s.seen = finalized


def test_finalizers_of_garbage_do_not_run_in_the_workers() -> None:
    threshold = gc.get_threshold()
    gc.set_threshold(1000)
    try:
        result = explore_all(State, [allocate, read_the_global], lambda s: True)
    finally:
        gc.set_threshold(*threshold)
    # Nothing the two threads do conflicts: one execution, conclusively. (A
    # finalizer run by a collection inside allocate would write the
    # global read_the_global reads.)
    assert result.num_explored == 1
    assert result.exhausted and not result.inconclusive
    assert gc.isenabled()
