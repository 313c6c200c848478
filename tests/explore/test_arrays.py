"""Elements of ``array.array`` and ctypes arrays are locations, like a list's.

Both are C types allocated on the heap (so not told apart from Python
classes by type flags alone); they are recognised as mutable sequences
behind the buffer protocol. Different indices are independent, a change of
length conflicts with every element.
"""

from __future__ import annotations

import array
import ctypes
from collections.abc import Callable
from typing import Any

import pytest
from _helpers import explore, explore_all
from frontrun import record_accesses

MAKERS: dict[str, Callable[[], Any]] = {
    "array.array": lambda: array.array("i", [0, 0, 0]),
    "ctypes array": lambda: (ctypes.c_int * 3)(),
}


def incr0(a: Any) -> None:
    a[0] = a[0] + 1


def incr1(a: Any) -> None:
    a[1] = a[1] + 1


@pytest.mark.parametrize("kind", MAKERS)
def test_a_lost_update_on_one_element_is_found(kind: str) -> None:
    result = explore(MAKERS[kind], [incr0, incr0], lambda a: a[0] == 2)
    assert not result.property_holds
    assert result.reproduction_successes == result.reproduction_attempts
    assert "[0]" in (result.explanation or "")


@pytest.mark.parametrize("kind", MAKERS)
def test_updates_of_different_elements_are_independent(kind: str) -> None:
    result = explore_all(MAKERS[kind], [incr0, incr1], lambda a: a[0] == 1 and a[1] == 1)
    assert result.property_holds and result.exhausted and not result.inconclusive
    assert result.num_explored == 1


def test_appending_conflicts_with_reading_an_element() -> None:
    def grow(a: array.array[int]) -> None:
        a.append(7)

    def read_last(a: array.array[int]) -> None:
        a[0] = a[-1]

    # The append can come before, between or after read_last's two element
    # accesses (each reads the length): three orders, as for a list.
    result = explore_all(MAKERS["array.array"], [grow, read_last], lambda a: True)
    as_list = explore_all(lambda: [0, 0, 0], [grow, read_last], lambda a: True)
    assert result.num_explored == as_list.num_explored == 3


def test_the_tracer_names_the_element() -> None:
    def body(a: Any) -> None:
        a[2] = a[1]

    for kind, make in MAKERS.items():
        seen = [(k, loc) for _t, k, loc, _l in record_accesses(make, [body])]
        assert next(s for s in seen if s[1].endswith("[1]"))[0] == "read", kind
        assert next(s for s in seen if s[1].endswith("[2]"))[0] == "write", kind
