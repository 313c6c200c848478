"""Each access category: a racy program that must be caught, and a safe twin
(same operations on disjoint locations, or atomic ones) that must hold in a
single execution, since nothing in it conflicts."""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from _helpers import explore, explore_all


class Obj:
    def __init__(self) -> None:
        self.a = 0
        self.b = 0
        self.items = [0, 0, 0]
        self.table = {"x": 0, "y": 0}
        self.log: list[int] = []


@dataclass
class Case:
    threads: list[Callable[[Obj], Any]]
    invariant: Callable[[Obj], bool]


# -- attributes ---------------------------------------------------------------


def incr_a(o: Obj) -> None:
    o.a = o.a + 1


def incr_b(o: Obj) -> None:
    o.b = o.b + 1


def incr_a_setattr(o: Obj) -> None:
    name = "a"
    setattr(o, name, getattr(o, name) + 1)


def incr_a_object_setattr(o: Obj) -> None:
    object.__setattr__(o, "a", object.__getattribute__(o, "a") + 1)


def incr_a_via_dict(o: Obj) -> None:
    d = o.__dict__
    d["a"] = d["a"] + 1


def delete_a_then_restore(o: Obj) -> None:
    v = o.a
    del o.a
    o.a = v + 1


# -- subscripts ---------------------------------------------------------------


def incr_item0(o: Obj) -> None:
    o.items[0] = o.items[0] + 1


def incr_item1(o: Obj) -> None:
    o.items[1] = o.items[1] + 1


def incr_key_x(o: Obj) -> None:
    o.table["x"] = o.table["x"] + 1


def incr_key_y(o: Obj) -> None:
    o.table["y"] = o.table["y"] + 1


def incr_key_x_operator(o: Obj) -> None:
    operator.setitem(o.table, "x", operator.getitem(o.table, "x") + 1)


def del_key_x(o: Obj) -> None:
    v = o.table["x"]
    del o.table["x"]
    o.table["x"] = v + 1


def write_items_0_and_1(o: Obj) -> None:
    o.items[0] = 1
    o.items[1] = 1


def write_item_2(o: Obj) -> None:
    o.items[2] = 1


def snapshot_slice(o: Obj) -> None:
    o.log = o.items[0:2]


def snapshot_list_ctor(o: Obj) -> None:
    o.log = list(o.items)[0:2]


def snapshot_for_loop(o: Obj) -> None:
    out = []
    for v in o.items:
        out.append(v)
    o.log = out[0:2]


def _store_ones(o: Obj, ones: int) -> None:
    o.log = [ones // 2, ones - ones // 2]


def snapshot_sorted(o: Obj) -> None:
    _store_ones(o, sorted(o.items).count(1))


def snapshot_sum(o: Obj) -> None:
    _store_ones(o, sum(o.items))


def snapshot_join(o: Obj) -> None:
    _store_ones(o, "".join(map(str, o.items)).count("1"))


def snapshot_reduce(o: Obj) -> None:
    _store_ones(o, functools.reduce(operator.add, o.items))


def snapshot_only_item_2(o: Obj) -> None:
    o.log = [o.items[2], o.items[2]]


def consistent_snapshot(o: Obj) -> bool:
    return o.log in ([0, 0], [1, 1])


# -- check-then-act on containers ---------------------------------------------


def add_once_x(o: Obj) -> None:
    if "new" not in o.table:
        o.log.append(1)
        o.table["new"] = 1


def append_if_short(o: Obj) -> None:
    if len(o.items) < 4:
        o.items.append(9)


def pop_if_nonempty(o: Obj) -> None:
    if o.items:
        o.log.append(o.items.pop())


# -- globals and closure cells --------------------------------------------------

COUNT = 0
OTHER_COUNT = 0


def incr_global(_o: Obj) -> None:
    global COUNT
    COUNT = COUNT + 1


def incr_other_global(_o: Obj) -> None:
    global OTHER_COUNT
    OTHER_COUNT = OTHER_COUNT + 1


def reset_global() -> Obj:
    global COUNT, OTHER_COUNT
    COUNT = 0
    OTHER_COUNT = 0
    return Obj()


def closure_counter() -> tuple[Callable[[Obj], None], Callable[[Obj], bool]]:
    count = 0

    def incr(_o: Obj) -> None:
        nonlocal count
        count = count + 1

    def check(_o: Obj) -> bool:
        nonlocal count
        ok = count == 2
        count = 0
        return ok

    return incr, check


_incr_cell, _check_cell = closure_counter()


def two_closure_counters() -> tuple[Callable[[Obj], None], Callable[[Obj], None], Callable[[Obj], bool]]:
    first = second = 0

    def incr_first(_o: Obj) -> None:
        nonlocal first
        first = first + 1

    def incr_second(_o: Obj) -> None:
        nonlocal second
        second = second + 1

    def check(_o: Obj) -> bool:
        nonlocal first, second
        ok = (first, second) == (1, 1)
        first = second = 0
        return ok

    return incr_first, incr_second, check


_incr_first_cell, _incr_second_cell, _check_two_cells = two_closure_counters()


# -- C methods and unbound descriptors ----------------------------------------------


def incr_x_get_update(o: Obj) -> None:
    v = o.table.get("x")
    o.table.update({"x": v + 1})


def incr_x_dunder_setitem(o: Obj) -> None:
    o.table.__setitem__("x", o.table.__getitem__("x") + 1)


def incr_x_unbound(o: Obj) -> None:
    dict.__setitem__(o.table, "x", dict.__getitem__(o.table, "x") + 1)


def append_unbound_if_short(o: Obj) -> None:
    if len(o.items) < 4:
        list.append(o.items, 9)


def extend_inplace_if_short(o: Obj) -> None:
    if len(o.items) < 4:
        o.items += [9]


def snapshot_copy(o: Obj) -> None:
    o.log = o.items.copy()[0:2]


def snapshot_enumerate(o: Obj) -> None:
    out = [0, 0]
    for i, v in enumerate(o.items):
        if i < 2:
            out[i] = v
    o.log = out


def snapshot_next(o: Obj) -> None:
    it = iter(o.items)
    first = next(it)
    o.log = [first, next(it)]


def snapshot_any_all(o: Obj) -> None:
    ones = 2 if all(o.items[0:2]) else (1 if any(o.items) else 0)
    _store_ones(o, ones)


def pop_x_if_present(o: Obj) -> None:
    if "x" in o.table:
        o.log.append(o.table.pop("x"))


RACY: dict[str, tuple[Callable[[], Obj], Case]] = {
    "attribute": (Obj, Case([incr_a, incr_a], lambda o: o.a == 2)),
    "setattr/getattr": (Obj, Case([incr_a_setattr, incr_a_setattr], lambda o: o.a == 2)),
    "object.__setattr__": (Obj, Case([incr_a_object_setattr, incr_a_object_setattr], lambda o: o.a == 2)),
    "__dict__ aliases the attribute": (Obj, Case([incr_a_via_dict, incr_a], lambda o: o.a == 2)),
    "delete attribute": (Obj, Case([delete_a_then_restore, incr_a], lambda o: o.a == 2)),
    "list item": (Obj, Case([incr_item0, incr_item0], lambda o: o.items[0] == 2)),
    "dict key": (Obj, Case([incr_key_x, incr_key_x], lambda o: o.table["x"] == 2)),
    "operator.setitem/getitem": (Obj, Case([incr_key_x_operator, incr_key_x], lambda o: o.table["x"] == 2)),
    "dict delete": (Obj, Case([del_key_x, incr_key_x], lambda o: o.table["x"] == 2)),
    "slice read per element": (Obj, Case([write_items_0_and_1, snapshot_slice], consistent_snapshot)),
    "list() constructor": (Obj, Case([write_items_0_and_1, snapshot_list_ctor], consistent_snapshot)),
    "for loop": (Obj, Case([write_items_0_and_1, snapshot_for_loop], consistent_snapshot)),
    "sorted()": (Obj, Case([write_items_0_and_1, snapshot_sorted], consistent_snapshot)),
    "sum()": (Obj, Case([write_items_0_and_1, snapshot_sum], consistent_snapshot)),
    "str.join over map()": (Obj, Case([write_items_0_and_1, snapshot_join], consistent_snapshot)),
    "functools.reduce": (Obj, Case([write_items_0_and_1, snapshot_reduce], consistent_snapshot)),
    "dict check-then-act": (Obj, Case([add_once_x, add_once_x], lambda o: len(o.log) == 1)),
    "len() check-then-act": (Obj, Case([append_if_short, append_if_short], lambda o: len(o.items) <= 4)),
    "truthiness check then pop": (Obj, Case([pop_if_nonempty] * 4, lambda o: len(o.log) <= 3)),
    "dict.get/dict.update": (Obj, Case([incr_x_get_update, incr_x_get_update], lambda o: o.table["x"] == 2)),
    "bound __setitem__/__getitem__": (
        Obj,
        Case([incr_x_dunder_setitem, incr_x_dunder_setitem], lambda o: o.table["x"] == 2),
    ),
    "unbound dict.__setitem__": (Obj, Case([incr_x_unbound, incr_x_unbound], lambda o: o.table["x"] == 2)),
    "unbound list.append": (
        Obj,
        Case([append_unbound_if_short, append_unbound_if_short], lambda o: len(o.items) <= 4),
    ),
    "in-place +=": (Obj, Case([extend_inplace_if_short, extend_inplace_if_short], lambda o: len(o.items) <= 4)),
    "list.copy()": (Obj, Case([write_items_0_and_1, snapshot_copy], consistent_snapshot)),
    "enumerate() loop": (Obj, Case([write_items_0_and_1, snapshot_enumerate], consistent_snapshot)),
    "iter()/next()": (Obj, Case([write_items_0_and_1, snapshot_next], consistent_snapshot)),
    "any()/all()": (Obj, Case([write_items_0_and_1, snapshot_any_all], consistent_snapshot)),
    "dict.pop check-then-act": (Obj, Case([pop_x_if_present, pop_x_if_present], lambda o: len(o.log) <= 1)),
    "module global": (reset_global, Case([incr_global, incr_global], lambda o: COUNT == 2)),
    "closure cell": (Obj, Case([_incr_cell, _incr_cell], _check_cell)),
}


def incr_y_get_update(o: Obj) -> None:
    v = o.table.get("y")
    o.table["y"] = v + 1


def append_log(o: Obj) -> None:
    o.log.append(1)


SAFE: dict[str, tuple[Callable[[], Obj], Case]] = {
    "dict.get of another key": (Obj, Case([incr_key_x, incr_y_get_update], lambda o: o.table == {"x": 1, "y": 1})),
    "append to a list nobody reads": (Obj, Case([append_log, incr_item0], lambda o: o.log == [1])),
    "different attributes": (Obj, Case([incr_a, incr_b], lambda o: (o.a, o.b) == (1, 1))),
    "different list items": (Obj, Case([incr_item0, incr_item1], lambda o: o.items[:2] == [1, 1])),
    "different dict keys": (Obj, Case([incr_key_x, incr_key_y], lambda o: o.table == {"x": 1, "y": 1})),
    "slice read of other elements": (Obj, Case([write_item_2, snapshot_slice], lambda o: o.log == [0, 0])),
    "reading an element nobody writes": (
        Obj,
        Case([write_items_0_and_1, snapshot_only_item_2], lambda o: o.log == [0, 0]),
    ),
    "different module globals": (
        reset_global,
        Case([incr_global, incr_other_global], lambda o: (COUNT, OTHER_COUNT) == (1, 1)),
    ),
    "different closure cells": (Obj, Case([_incr_first_cell, _incr_second_cell], _check_two_cells)),
}


@pytest.mark.parametrize("name", list(RACY))
def test_racy_program_is_caught(name: str) -> None:
    setup, case = RACY[name]
    result = explore(setup, case.threads, case.invariant, preemption_bound=None)
    assert not result.property_holds, f"{name}: race not found in {result.num_explored} executions"
    assert result.reproduction_successes == result.reproduction_attempts == 3


@pytest.mark.parametrize("name", list(SAFE))
def test_safe_twin_holds_in_one_execution(name: str) -> None:
    setup, case = SAFE[name]
    result = explore_all(setup, case.threads, case.invariant)
    assert result.property_holds, result.explanation
    assert result.num_explored == 1
    assert result.exhausted


def _observable(o: Obj) -> tuple[Any, ...]:
    return (o.a, o.b, list(o.items), dict(o.table), list(o.log))


# Every racy program on objects has a safe twin: the same threads, each on an
# object of its own. Nothing is shared, so one execution must cover it, and
# each object must end as if its thread had run alone.
SEPARATE = [name for name, (setup, _) in RACY.items() if setup is Obj and name != "closure cell"]


@pytest.mark.parametrize("name", SEPARATE)
def test_the_same_threads_on_separate_objects_hold_in_one_execution(name: str) -> None:
    _, case = RACY[name]
    expected = []
    for fn in case.threads:
        alone = Obj()
        fn(alone)
        expected.append(_observable(alone))
    threads = [lambda objs, i=i, fn=fn: fn(objs[i]) for i, fn in enumerate(case.threads)]
    result = explore_all(
        lambda: [Obj() for _ in case.threads],
        threads,
        lambda objs: [_observable(o) for o in objs] == expected,
    )
    assert result.property_holds, result.explanation
    assert result.num_explored == 1, f"{name}: {result.num_explored} executions for unshared objects"
    assert result.exhausted
