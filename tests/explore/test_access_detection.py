"""What the tracer reports for each kind of instruction, without any search.

`record_accesses` runs the threads one after the other and returns what the
native tracer saw; these tests pin down the classification of each access
category (the exploration tests check that races through them are found).
"""

from __future__ import annotations

import functools
import operator
from typing import Any

import frontrun
import frontrun._engine
from frontrun import record_accesses


class Box:
    def __init__(self) -> None:
        self.value = 0
        self.items: list[int] = [10, 20, 30]
        self.table: dict[str, int] = {"a": 1}
        self.tags: set[str] = set()


def seen(fn: Any, setup: Any = Box) -> list[tuple[str, str]]:
    return [(kind, loc) for _t, kind, loc, _line in record_accesses(setup, [fn])]


def test_attribute_load_store_delete() -> None:
    def body(b: Box) -> None:
        x = b.value
        b.value = x + 1
        del b.value

    acc = seen(body)
    assert acc == [("read", "Box.value"), ("write", "Box.value"), ("write", "Box.value")]


def test_list_index_read_and_write_touch_the_index_and_read_the_shape() -> None:
    def body(b: Box) -> None:
        items = b.items
        items[1] = items[-1]

    acc = seen(body)
    assert ("read", "list[2]") in acc  # -1 normalised
    assert ("write", "list[1]") in acc
    assert ("write", "list (length/membership)") not in acc
    assert acc.count(("read", "list (length/membership)")) == 2


def test_list_slice_read_expands_to_each_element() -> None:
    def body(b: Box) -> None:
        items = b.items
        _ = items[0:2]

    acc = seen(body)
    assert ("read", "list[0]") in acc and ("read", "list[1]") in acc
    assert ("read", "list[2]") not in acc


def test_list_methods_are_classified_by_name() -> None:
    def body(b: Box) -> None:
        items = b.items
        items.append(1)
        items.count(1)

    acc = seen(body)
    assert ("write", "list (length/membership)") in acc
    # count reads every element
    assert ("read", "list[3]") in acc


def test_dict_store_of_existing_key_does_not_change_the_shape_but_new_key_does() -> None:
    def body(b: Box) -> None:
        t = b.table
        t["a"] = 2
        t["new"] = 3

    acc = seen(body)
    i_a = acc.index(("write", "dict['a']"))
    assert acc[i_a + 1] == ("read", "dict (length/membership)")
    i_new = acc.index(("write", "dict['new']"))
    assert acc[i_new + 1] == ("write", "dict (length/membership)")


def test_dict_get_and_membership_read_the_key() -> None:
    def body(b: Box) -> None:
        t = b.table
        t.get("a")
        _ = "a" in t
        t.setdefault("z", 0)

    acc = seen(body)
    assert acc.count(("read", "dict['a']")) == 2
    assert ("write", "dict['z']") in acc


def test_globals_are_keyed_by_module_and_name() -> None:
    acc = seen(lambda b: _bump_global())
    assert ("read", f"{__name__}._COUNTER") in acc
    assert ("write", f"{__name__}._COUNTER") in acc


_COUNTER = 0


def _bump_global() -> None:
    global _COUNTER
    _COUNTER += 1


def test_closure_cells_are_read_and_written() -> None:
    def make() -> Any:
        count = 0

        def bump(_b: Any) -> None:
            nonlocal count
            count += 1

        return bump

    acc = seen(make())
    assert ("read", "closure variable 'count'") in acc
    assert ("write", "closure variable 'count'") in acc


def test_builtins_acting_on_arguments() -> None:
    def body(b: Box) -> None:
        name = "value"
        setattr(b, name, 5)
        getattr(b, name)
        hasattr(b, name)
        len(b.items)
        sorted(b.tags)
        operator.setitem(b.table, "k", 1)
        functools.reduce(operator.add, b.items)

    acc = seen(body)
    assert acc.count(("write", "Box.value")) == 1
    assert acc.count(("read", "Box.value")) == 2
    assert ("read", "set (length/membership)") in acc
    assert ("write", "dict['k']") in acc
    assert ("read", "list[2]") in acc


def test_wrapper_descriptors_and_dunder_dict_alias_attributes() -> None:
    def body(b: Box) -> None:
        object.__setattr__(b, "value", 1)
        b.__dict__["value"] = 2

    acc = seen(body)
    assert acc.count(("write", "Box.value")) == 2


def test_for_loops_read_each_element() -> None:
    def body(b: Box) -> None:
        for _ in b.items:
            pass

    acc = seen(body)
    assert [a for a in acc if a[1].startswith("list[")] == [
        ("read", "list[0]"),
        ("read", "list[1]"),
        ("read", "list[2]"),
    ]


def test_constructors_and_join_iterate_mutable_arguments() -> None:
    def body(b: Box) -> None:
        list(b.items)
        ",".join(map(str, b.items))
        dict(b.table)

    acc = seen(body)
    assert acc.count(("read", "list[0]")) == 2
    assert ("read", "dict['a']") in acc


def test_immutable_objects_generate_no_accesses() -> None:
    def body(_b: Box) -> None:
        s = "abc"
        s.upper()
        t = (1, 2)
        _ = t[0]
        n = 3
        _ = n.real
        _ = len("xyz")

    assert seen(body) == []


def test_static_stack_depths_agree_with_the_interpreter() -> None:
    # 3.11 publishes the stack pointer to trace functions; the tracer
    # compares it with the depth it computed. (0 trivially on 3.12+.)
    seen(lambda b: (b.items.append(b.value), setattr(b, "value", len(b.items))))
    assert frontrun._engine.depth_mismatches() == 0


def test_library_code_is_not_traced() -> None:
    import json

    def body(b: Box) -> None:
        json.dumps(b.table)

    # json's own iteration over the dict is invisible; only the loads in
    # user code remain.
    acc = seen(body)
    assert ("read", "json.dumps") in acc
    assert not [a for a in acc if a[1].startswith("dict")]


def test_trace_packages_widens_tracing_to_matching_library_modules() -> None:
    import copy

    def body(b: Box) -> None:
        copy.copy(b.items)

    def locations(**kwargs: Any) -> list[str]:
        return [loc for _t, _k, loc, _l in record_accesses(Box, [body], **kwargs)]

    assert "list[0]" not in locations()
    assert "list[0]" in locations(trace_packages=["cop?"])


def test_dynamic_code_is_traced_when_called_from_user_code() -> None:
    namespace: dict[str, Any] = {}
    exec("def poke(b):\n    b.value = 7\n", namespace)
    poke = namespace["poke"]

    acc = seen(lambda b: poke(b))
    assert ("write", "Box.value") in acc


def test_truth_tests_length_checks_and_comparisons_read_containers() -> None:
    def body(b: Box) -> None:
        items = b.items
        if items:
            pass
        match items:
            case [_, *_]:
                pass
        _ = items == [1]

    acc = seen(body)
    shape = ("read", "list (length/membership)")
    i_truth = acc.index(shape)  # if items
    i_len = acc.index(shape, i_truth + 1)  # match's length check
    # the comparison reads every element of both lists
    assert ("read", "list[2]") in acc[i_len + 1 :]


def test_match_statements_are_deterministic_for_the_engine() -> None:
    # A branch taken on an unreported read would make the same schedule
    # produce different steps; the engine would then abandon executions.
    from _helpers import explore_all

    class State:
        def __init__(self) -> None:
            self.log: list[int] = []

    def push(s: State) -> None:
        s.log.append(1)

    def inspect(s: State) -> None:
        match s.log:
            case [x, *_]:
                s.log.append(x)
            case _:
                pass

    result = explore_all(State, [push, inspect])
    assert result.inconclusive == []
    assert result.num_explored == 2


def test_vars_aliases_attributes() -> None:
    def body(b: Box) -> None:
        vars(b)["value"] = 3

    assert ("write", "Box.value") in seen(body)
