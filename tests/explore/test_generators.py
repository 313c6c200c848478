"""Code that runs inside generator frames is traced like any function body.

A generator's frame is suspended and resumed: its accesses before and after
a ``yield`` must be seen, whoever resumes it (``for``, ``next()``, ``list()``,
``sum()``, ``yield from``, ``with`` over a ``@contextmanager``, an ``await``
chain). Each racy
program below is a lost update split across such a frame, and must be found;
its safe twin does the same under a lock and must hold with the search
exhausted.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

import frontrun._engine
import pytest
from _helpers import explore, explore_all


class Counter:
    def __init__(self) -> None:
        self.n = 0
        self.items = [0]
        self.lock = threading.Lock()


def _read_then_write(c: Counter) -> Iterator[None]:
    v = c.n
    yield
    c.n = v + 1


def by_for(c: Counter) -> None:
    for _ in _read_then_write(c):
        pass


def by_next(c: Counter) -> None:
    g = _read_then_write(c)
    next(g)
    next(g, None)


def by_list(c: Counter) -> None:
    list(_read_then_write(c))


def _delegate(c: Counter) -> Iterator[None]:
    yield from _read_then_write(c)


def by_yield_from(c: Counter) -> None:
    list(_delegate(c))


def _outer(c: Counter) -> Iterator[int]:
    def inner() -> Iterator[int]:
        v = c.n
        yield v
        c.n = v + 1

    yield from inner()


def by_nested_generator_function(c: Counter) -> None:
    list(_outer(c))


@contextlib.contextmanager
def _held(c: Counter) -> Iterator[None]:
    v = c.n
    yield
    c.n = v + 1


def by_contextmanager(c: Counter) -> None:
    with _held(c):
        pass


class _Suspend:
    """An awaitable that suspends its coroutine once."""

    def __await__(self) -> Iterator[None]:
        yield


async def _await_between(c: Counter) -> None:
    v = c.n
    await _Suspend()
    c.n = v + 1


async def _await_chain(c: Counter) -> None:
    await _await_between(c)


def by_await(c: Counter) -> None:
    # Driven by hand, as an event loop would: resumed after each suspension.
    coro = _await_chain(c)
    try:
        while True:
            coro.send(None)
    except StopIteration:
        pass


def genexpr_sum(c: Counter) -> None:
    # The read of the shared list happens inside the generator expression.
    total = sum(x for x in c.items)
    c.items[0] = total + 1


def genexpr_next(c: Counter) -> None:
    v = next(x for x in c.items)
    c.items[0] = v + 1


def genexpr_list(c: Counter) -> None:
    v = list(x + 1 for x in c.items)
    c.items[0] = v[0]


def _locked(work: Callable[[Counter], None]) -> Callable[[Counter], None]:
    def locked(c: Counter) -> None:
        with c.lock:
            work(c)

    locked.__name__ = f"locked_{work.__name__}"
    return locked


def _count(c: Counter) -> int:
    return c.n


def _first(c: Counter) -> int:
    return c.items[0]


RACES: list[tuple[Callable[[Counter], None], Callable[[Counter], int]]] = [
    (by_for, _count),
    (by_next, _count),
    (by_list, _count),
    (by_yield_from, _count),
    (by_nested_generator_function, _count),
    (by_contextmanager, _count),
    (by_await, _count),
    (genexpr_sum, _first),
    (genexpr_next, _first),
    (genexpr_list, _first),
]


@pytest.mark.parametrize(("work", "value"), RACES, ids=[w.__name__ for w, _ in RACES])
def test_lost_update_inside_a_generator_frame_is_found(
    work: Callable[[Counter], None], value: Callable[[Counter], int], recwarn: Any
) -> None:
    result = explore(Counter, [work, work], lambda c: value(c) == 2)
    assert not result.property_holds, f"{work.__name__}: the lost update was missed"
    assert result.reproduction_successes == result.reproduction_attempts
    # Nothing went wrong while classifying the generator's code.
    assert not [w for w in recwarn if "OverflowError" in str(w.message)]


@pytest.mark.parametrize(("work", "value"), RACES, ids=[w.__name__ for w, _ in RACES])
def test_the_same_generator_under_a_lock_holds(
    work: Callable[[Counter], None], value: Callable[[Counter], int]
) -> None:
    locked = _locked(work)
    result = explore_all(Counter, [locked, locked], lambda c: value(c) == 2)
    assert result.property_holds
    assert result.exhausted and not result.inconclusive


def test_generator_operands_sit_where_the_interpreter_puts_them() -> None:
    # 3.11 publishes the stack pointer to trace functions; each generator
    # shape above must agree with the statically computed depths.
    before = frontrun._engine.depth_mismatches()
    for work, value in RACES:
        explore(Counter, [work], lambda c, value=value: value(c) == 1)
    assert frontrun._engine.depth_mismatches() == before


def test_nested_generators_classify_without_error(capfd: Any) -> None:
    explore(Counter, [by_nested_generator_function, by_yield_from], lambda c: True)
    assert "OverflowError" not in capfd.readouterr().err
