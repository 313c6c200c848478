"""The number of executions DPOR needs: the headline guarantees."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest
from _helpers import explore, explore_all
from frontrun.dpor import explore_dpor as explore_dpor_from_submodule


class Counter:
    def __init__(self) -> None:
        self.value = 0

    def increment(self) -> None:
        tmp = self.value
        self.value = tmp + 1


class Shared:
    def __init__(self) -> None:
        self.x = 0


def writer(s: Shared) -> None:
    s.x = 1


def reader(s: Shared) -> None:
    _ = s.x


def test_lost_update_is_found_in_exactly_two_executions() -> None:
    result = explore(Counter, [lambda c: c.increment(), lambda c: c.increment()], lambda c: c.value == 2)
    assert not result.property_holds
    assert result.num_explored == 2
    assert result.counterexample is not None
    assert result.failures == [(2, result.counterexample)]


def test_explore_dpor_is_importable_from_the_submodule() -> None:
    import frontrun

    assert frontrun.explore_dpor is explore_dpor_from_submodule


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_one_writer_and_n_readers_explore_two_to_the_n_executions(n: int) -> None:
    result = explore_all(Shared, [writer] + [reader] * n)
    assert result.property_holds
    assert result.num_explored == 2**n
    assert result.exhausted


@pytest.mark.parametrize("n", [2, 4, 8])
def test_threads_on_their_own_objects_explore_one_execution(n: int) -> None:
    class State:
        def __init__(self) -> None:
            self.objs = [Counter() for _ in range(n)]

    def work(i: int):
        def run(s: State) -> None:
            obj = s.objs[i]
            for _ in range(5):
                obj.value = obj.value + 1

        return run

    result = explore_all(State, [work(i) for i in range(n)], lambda s: all(o.value == 5 for o in s.objs))
    assert result.property_holds
    assert result.num_explored == 1
    assert result.exhausted


def test_all_interleavings_of_two_increments_with_full_dpor() -> None:
    # Mazurkiewicz traces of (r1 w1) || (r2 w2) on one location: 4 (the two
    # reads commute), 2 of which lose an update.
    result = explore_all(Counter, [lambda c: c.increment()] * 2, lambda c: c.value == 2)
    assert result.num_explored == 4
    assert len(result.failures) == 2
    assert result.exhausted


def test_max_executions_bounds_the_search() -> None:
    result = explore_all(Shared, [writer] + [reader] * 4, max_executions=3)
    assert result.num_explored == 3
    assert not result.exhausted


def _memoized_under_a_lock() -> object:
    # Decorator-style state: the cache and the lock live only in closure
    # cells of the returned function.
    import threading

    lock = threading.Lock()
    cache: dict[object, int] = {}

    def lookup(*args: object, **kwargs: object) -> int:
        key = (args, tuple(kwargs))
        with lock:
            if key in cache:
                return cache[key]
        with lock:
            return cache.setdefault(key, 1)

    return lookup


def test_state_held_in_closure_cells_is_keyed_the_same_in_every_execution() -> None:
    # Objects reached only through a closure used to be numbered in the
    # order of first access, which changes with the schedule: the search
    # then met "repeated" schedules and gave executions up.
    result = explore_all(_memoized_under_a_lock, [lambda f: f(1), lambda f: f(2)], lambda f: True)
    assert result.property_holds and result.exhausted
    assert not result.inconclusive


# --- the default preemption bound against full DPOR ---------------------------


class LockedCounter:
    def __init__(self) -> None:
        import threading

        self.value = 0
        self.lock = threading.Lock()

    def increment(self) -> None:
        with self.lock:
            tmp = self.value
            self.value = tmp + 1


def _switches(schedule: list[int]) -> int:
    """Context switches of a schedule: at least its preemptions."""
    return sum(a != b for a, b in itertools.pairwise(schedule))


COUNT_PROGRAMS = {
    "lost update, two threads": (Counter, [lambda c: c.increment()] * 2, lambda c: c.value == 2),
    "one lock, two threads": (LockedCounter, [lambda c: c.increment()] * 2, lambda c: c.value == 2),
    "one writer, four readers": (Shared, [writer] + [reader] * 4, lambda s: True),
    "one writer, two readers": (Shared, [writer] + [reader] * 2, lambda s: True),
}


@pytest.mark.parametrize("name", COUNT_PROGRAMS)
def test_the_default_bound_runs_no_more_executions_than_full_dpor(name: str) -> None:
    setup, threads, invariant = COUNT_PROGRAMS[name]
    full = explore_all(setup, threads, invariant)
    bounded = explore_all(setup, threads, invariant, preemption_bound=2)
    assert full.exhausted and bounded.exhausted
    assert bounded.num_explored <= full.num_explored
    if any(_switches(schedule) <= 2 for _, schedule in full.failures):
        assert bounded.verdict == "race"
    else:
        # Full DPOR stayed within the bound, so the bounded search was the
        # same search and covered every interleaving; the scope says so.
        assert bounded.complete
        assert bounded.scope.startswith("holds: every interleaving explored")


def test_where_the_default_bound_cuts_in_it_costs_at_most_half_again_full_dpor() -> None:
    # Three increments: full DPOR needs more than two preemptions for some
    # traces, so the conservative bounded search joins the optimal one,
    # which is cheaper here, finishes first, and so covers every trace.
    full = explore_all(Counter, [lambda c: c.increment()] * 3, lambda c: c.value == 3)
    bounded = explore_all(Counter, [lambda c: c.increment()] * 3, lambda c: c.value == 3, preemption_bound=2)
    assert full.complete and bounded.complete
    assert full.num_explored < bounded.num_explored <= 1.5 * full.num_explored
    assert len(bounded.failures) >= len(full.failures)


def test_a_bound_that_cuts_the_search_says_what_it_covered() -> None:
    # preemption_bound=0 on three increments: the serial orders are few,
    # the conservative search is done first, and the result only claims
    # the bound.
    class Shared3:
        def __init__(self) -> None:
            self.a = 0

    def bump(s: Shared3) -> None:
        s.a = s.a + 1

    bounded = explore_all(Shared3, [bump] * 3, lambda s: True, preemption_bound=0)
    assert bounded.exhausted and not bounded.complete
    assert bounded.scope.startswith("holds within preemption_bound=0")


class Pair:
    def __init__(self) -> None:
        import threading

        self.a = 0
        self.b = 0
        self.lock = threading.Lock()


def _random_worker(ops: list[tuple[str, str, int]]) -> Any:
    def run(s: Pair) -> None:
        for kind, attr, value in ops:
            if kind == "read":
                _ = getattr(s, attr)
            elif kind == "write":
                setattr(s, attr, value)
            elif kind == "add":
                setattr(s, attr, getattr(s, attr) + value)
            else:
                with s.lock:
                    setattr(s, attr, getattr(s, attr) * 2 + value)

    return run


def _random_program(rng: random.Random) -> list[Any]:
    threads = []
    for t in range(rng.randint(2, 3)):
        ops = [
            (rng.choice(["read", "write", "add", "locked"]), rng.choice("ab"), t + 1) for _ in range(rng.randint(1, 2))
        ]
        threads.append(_random_worker(ops))
    return threads


@pytest.mark.parametrize("seed", range(24))
def test_the_default_bound_finds_every_final_state_full_dpor_reaches_within_it(seed: int) -> None:
    threads = _random_program(random.Random(seed))
    # An invariant that fails every execution, so that each one's schedule
    # comes back with its final state.
    full_states: list[tuple[int, int]] = []
    bounded_states: list[tuple[int, int]] = []

    def record(into: list[tuple[int, int]]) -> Any:
        return lambda s: into.append((s.a, s.b)) is not None

    full = explore_all(Pair, threads, record(full_states), reproduce_on_failure=0)
    bounded = explore_all(Pair, threads, record(bounded_states), preemption_bound=2, reproduce_on_failure=0)
    assert full.exhausted and bounded.exhausted
    assert len(full.failures) == full.num_explored == len(full_states)
    within = {full_states[n - 1] for n, schedule in full.failures if _switches(schedule) <= 2}
    assert within <= set(bounded_states)
    if all(_switches(schedule) <= 2 for _, schedule in full.failures):
        # Full DPOR never needed more than the bound: the bounded search
        # is the same search.
        assert bounded.num_explored == full.num_explored
