"""asyncio tasks explored by explore_async: the races of async code are
found, their fixed twins hold, and the counts are those of the await-level
steps."""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import sys
import time
from typing import Any

import async_programs as p
import frontrun
import pytest


def test_async_lost_update_is_found_in_the_minimal_number_of_executions() -> None:
    result = frontrun.explore_async(
        p.Counter, [p.increment, p.increment], lambda c: c.value == 2, preemption_bound=None
    )
    assert result.property_holds is False
    # The first execution runs the tasks one after the other (no race);
    # the second is the first that interleaves the two reads.
    assert result.num_explored == 2
    assert "lost update on Counter.value" in result.explanation
    assert result.reproduction_successes == result.reproduction_attempts == 10


def test_the_asyncio_lock_twin_holds() -> None:
    result = frontrun.explore_async(
        p.Counter, [p.increment_locked, p.increment_locked], lambda c: c.value == 2, preemption_bound=None
    )
    assert result.property_holds is True
    assert result.exhausted


def test_a_task_is_not_preempted_between_awaits() -> None:
    # The same read-modify-write as the lost update, with no await between
    # the read and the write: the event loop cannot interleave it.
    result = frontrun.explore_async(
        p.Counter,
        [p.increment_without_await, p.increment_without_await, p.increment_without_await],
        lambda c: c.value == 3,
        preemption_bound=None,
    )
    assert result.property_holds is True
    assert result.exhausted
    # One step per task, all conflicting: the 3! orders of the steps.
    assert result.num_explored == 6


def test_async_check_then_insert_on_a_dict_is_found() -> None:
    result = frontrun.explore_async(
        p.Registry, [p.register, p.register], lambda r: r.created == 1, preemption_bound=None
    )
    assert result.property_holds is False
    assert "check-then-act on dict['alice']" in result.explanation


def test_producer_consumer_with_a_wrong_termination_condition_is_found() -> None:
    result = frontrun.explore_async(
        p.Pipeline, [p.producer, p.consumer], lambda s: s.consumed == [0, 1], preemption_bound=None
    )
    assert result.property_holds is False


def test_producer_consumer_with_a_sentinel_holds() -> None:
    result = frontrun.explore_async(
        p.Pipeline,
        [p.producer_with_sentinel, p.consumer_with_sentinel],
        lambda s: s.consumed == [0, 1],
        preemption_bound=None,
    )
    assert result.property_holds is True
    assert result.exhausted


def test_gather_deadlock_on_two_locks_is_found_with_its_cycle() -> None:
    result = frontrun.explore_async(p.Accounts, [p.a_then_b, p.b_then_a], lambda s: True, preemption_bound=None)
    assert result.property_holds is False
    assert result.deadlock is not None
    assert result.deadlock.is_cycle
    text = result.deadlock.describe()
    assert "thread 0 holds Lock state.a and waits for Lock state.b" in text
    assert "thread 1 holds Lock state.b and waits for Lock state.a" in text
    assert "Deadlock: lock-ordering cycle" in result.explanation


@pytest.mark.parametrize("k", [1, 2, 4])
def test_k_independent_tasks_take_exactly_one_execution(k: int) -> None:
    result = frontrun.explore_async(
        lambda: p.Cells(k),
        [p.own_cell(i) for i in range(k)],
        lambda c: c.cells == [1] * k,
        preemption_bound=None,
    )
    assert result.property_holds is True
    assert result.num_explored == 1


def _mazurkiewicz_traces(tasks: list[list[tuple[str, str]]]) -> int:
    """Brute force: every interleaving of the tasks' steps (each step
    ``(op, location)``), grouped by the order of their conflicting pairs
    (two steps of different tasks on one location, one a write)."""
    n = len(tasks)
    order = [t for t in range(n) for _ in tasks[t]]
    classes = set()
    for perm in set(itertools.permutations(order)):
        seen = [0] * n
        events = []
        for t in perm:
            events.append((t, seen[t]))
            seen[t] += 1
        position = {e: i for i, e in enumerate(events)}
        signature = []
        for (ta, ia), (tb, ib) in itertools.combinations(sorted(position), 2):
            if ta == tb:
                continue
            (opa, la), (opb, lb) = tasks[ta][ia], tasks[tb][ib]
            if la == lb and "w" in (opa, opb):
                signature.append(position[(ta, ia)] < position[(tb, ib)])
        classes.add(tuple(signature))
    return len(classes)


@pytest.mark.parametrize("n", [2, 3, 4])
def test_async_counter_explores_the_mazurkiewicz_traces_of_its_await_level_steps(n: int) -> None:
    # Each increment is two steps: read the counter (then await), write it.
    expected = _mazurkiewicz_traces([[("r", "value"), ("w", "value")]] * n)
    if n == 2:
        # By hand: 0's write before 1's read, 1's before 0's, or both reads
        # first and then either write order.
        assert expected == 4
    result = frontrun.explore_async(
        p.Counter,
        [p.increment] * n,
        lambda c: True,
        preemption_bound=None,
        stop_on_first=False,
    )
    assert result.exhausted
    assert result.num_explored == expected


def test_the_replay_token_of_an_async_failure_reproduces_it() -> None:
    found = frontrun.explore_async(p.Counter, [p.increment, p.increment], lambda c: c.value == 2, preemption_bound=None)
    token = next(line for line in found.explanation.splitlines() if line.startswith("Replay with:")).split('"')[1]
    replayed = frontrun.replay_async(token, p.Counter, [p.increment, p.increment], lambda c: c.value == 2)
    assert replayed.invariant_holds is False
    assert replayed.state.value == 1

    @frontrun.reproduce(token)
    def regression() -> frontrun.InterleavingResult:
        return frontrun.explore_async(p.Counter, [p.increment, p.increment], lambda c: c.value == 2)

    forced = regression()
    assert forced.num_explored == 1
    assert forced.property_holds is False
    fixed = regression.__wrapped__  # the search itself still finds it
    assert fixed().property_holds is False


def test_sleeps_and_timeouts_run_on_a_virtual_clock() -> None:
    started = time.monotonic()
    result = frontrun.explore_async(
        p.Slow,
        [p.sleeps_long, p.waits_with_timeout],
        lambda s: sorted(s.log) == ["slept", "timed out"],
        preemption_bound=None,
    )
    assert result.property_holds is True
    assert time.monotonic() - started < 5  # an hour of sleep, a 10 s timeout


def test_the_timeout_fires_first_when_it_is_earlier() -> None:
    # wait_for's 10 s timeout expires before the hour-long sleep ends.
    result = frontrun.explore_async(
        p.Slow,
        [p.sleeps_long, p.waits_with_timeout],
        lambda s: s.log == ["timed out", "slept"],
        preemption_bound=None,
    )
    assert result.property_holds is True


def test_explore_dpor_points_coroutine_functions_to_explore_async() -> None:
    with pytest.raises(TypeError, match="explore_async"):
        frontrun.explore_dpor(p.Counter, [p.increment, p.increment], lambda c: True)


def test_what_is_not_explored_yet_ends_inconclusive_rather_than_passing() -> None:
    worker = p.reads_in_a_thread
    result = frontrun.explore_async(p.Counter, [worker, worker], lambda c: c.value == 2, preemption_bound=None)
    assert result.property_holds is None
    assert not result.exhausted
    reasons = " ".join(why for _, why in result.inconclusive)
    assert "explore_async does not explore" in reasons


@pytest.mark.parametrize(
    "threads",
    [
        [p.gathers_two_increments],
        [p.spawns_a_task, p.spawns_a_task],
        [p.spawns_a_task, p.increment],
        [p.waits_for_a_timeout, p.waits_for_a_timeout],
    ],
    ids=["gather", "create_task in both", "create_task and a task", "wait_for"],
)
def test_a_lost_update_between_tasks_the_tasks_created_is_found(threads: list[Any]) -> None:
    result = frontrun.explore_async(p.Counter, threads, lambda c: c.value == 2, preemption_bound=None)
    assert result.property_holds is False, result.explanation
    assert result.inconclusive == []
    text = result.explanation or ""
    assert "lost update on Counter.value" in text
    # The created tasks are named after their coroutine and their creator
    # (wait_for makes no task from 3.12 on).
    if threads[0] is not p.waits_for_a_timeout or sys.version_info < (3, 12):
        created = text.splitlines()[1]
        assert "= increment (created by task 0 at " in created and "async_programs.py:" in created, created
    token = text.rpartition('replay_async("')[2].partition('"')[0]
    replayed = frontrun.replay_async(token, p.Counter, threads, lambda c: c.value == 2)
    assert replayed.invariant_holds is False
    assert replayed.schedule == result.counterexample

    @frontrun.reproduce(token)
    def regression() -> frontrun.InterleavingResult:
        return frontrun.explore_async(p.Counter, threads, lambda c: c.value == 2)

    forced = regression()
    assert forced.num_explored == 1 and forced.property_holds is False
    # asyncio's bookkeeping of the tasks (a task's state, its callbacks)
    # orders the steps but is folded out of the conflicts shown.
    conflicts = text.partition("Conflicts:")[2].partition("\n\n")[0]
    assert "Task._" not in conflicts and "Future._" not in conflicts, conflicts


def test_the_report_of_a_failure_with_created_tasks_is_written(tmp_path: Any) -> None:
    result = frontrun.explore_async(
        p.Counter, [p.gathers_two_increments], lambda c: c.value == 2, report_dir=str(tmp_path)
    )
    assert result.property_holds is False
    assert result.report_path is not None and os.path.exists(result.report_path)
    # Named after the program's race, not asyncio's bookkeeping of the tasks.
    assert "lost-update-on-counter-value" in os.path.basename(result.report_path), result.report_path


@pytest.mark.parametrize(
    "threads",
    [[p.gathers_two_locked_increments], [p.spawns_a_locked_task, p.spawns_a_locked_task]],
    ids=["gather", "create_task"],
)
def test_created_tasks_under_an_asyncio_lock_hold_after_every_order(threads: list[Any]) -> None:
    result = frontrun.explore_async(p.Counter, threads, lambda c: c.value == 2, preemption_bound=None)
    assert result.property_holds is True, result.explanation
    assert result.exhausted
    assert result.num_explored > 1


def test_an_exception_of_a_created_task_nobody_retrieves_is_an_error() -> None:
    result = frontrun.explore_async(p.Counter, [p.fires_and_forgets_a_failing_task], lambda c: True)
    assert result.property_holds is False
    assert isinstance(result.errors.get(1), ValueError)


def test_an_exception_the_creator_retrieves_is_no_error() -> None:
    result = frontrun.explore_async(p.Counter, [p.retrieves_a_failure], lambda c: c.value == 1)
    assert result.property_holds is True, result.explanation
    assert result.errors == {}


def test_a_created_task_left_waiting_after_the_given_ones_end_is_no_deadlock() -> None:
    # asyncio.run would cancel it once the program's tasks are done.
    result = frontrun.explore_async(p.Counter, [p.leaves_a_waiting_task], lambda c: c.value == 1)
    assert result.property_holds is True, result.explanation
    assert result.deadlock is None
    # What the cancellation would run is not checked: the result says so.
    assert any("left pending" in n for n in result.notes), result.notes


def test_a_given_task_waiting_for_a_created_task_that_waits_forever_is_a_deadlock() -> None:
    result = frontrun.explore_async(p.Counter, [p.awaits_a_task_that_waits_forever], lambda c: True)
    assert result.property_holds is False
    # Task 1 holds the lock it waits for: the cycle is its own.
    assert result.deadlock is not None and list(result.deadlock) == [1]


def test_more_created_tasks_than_frontrun_numbers_end_inconclusive() -> None:
    result = frontrun.explore_async(p.Counter, [p.gathers_too_many], lambda c: c.value == 9, preemption_bound=None)
    assert result.property_holds is None
    reasons = " ".join(why for _, why in result.inconclusive)
    assert f"more than {frontrun._async.SPAWN_SLOTS} tasks created by the tasks" in reasons, reasons


def test_the_asyncio_semaphore_twin_holds() -> None:
    result = frontrun.explore_async(
        p.Guarded,
        [p.increment_under_semaphore, p.increment_under_semaphore],
        lambda g: g.value == 2,
        preemption_bound=None,
    )
    assert result.property_holds is True
    assert result.exhausted


def test_an_event_orders_the_write_before_the_read() -> None:
    result = frontrun.explore_async(
        p.Guarded, [p.publish, p.read_when_ready], lambda g: g.seen == [42], preemption_bound=None
    )
    assert result.property_holds is True
    assert result.exhausted


def test_reading_without_waiting_for_the_event_is_found() -> None:
    result = frontrun.explore_async(
        p.Guarded, [p.publish, p.read_without_waiting], lambda g: g.seen == [42], preemption_bound=None
    )
    assert result.property_holds is False


def test_a_wait_nobody_ends_is_a_deadlock_naming_the_blocked_task() -> None:
    result = frontrun.explore_async(p.Guarded, [p.wait_forever], lambda g: True, preemption_bound=None)
    assert result.property_holds is False
    assert result.deadlock is not None
    assert not result.deadlock.is_cycle
    assert [e.thread for e in result.deadlock.blocked] == [0]
    assert "every unfinished task is blocked: task 0 waits on Event state.ready" in result.explanation


def test_a_condition_hands_the_item_over_in_every_order() -> None:
    result = frontrun.explore_async(
        p.Guarded, [p.put_and_notify, p.wait_for_item], lambda g: g.seen == [1], preemption_bound=None
    )
    assert result.property_holds is True
    assert result.exhausted
    assert result.num_explored >= 2  # the waiter first, or the notifier first


def test_the_explanation_names_the_tasks_and_their_await_points() -> None:
    result = frontrun.explore_async(
        p.Counter, [p.increment, p.increment], lambda c: c.value == 2, preemption_bound=None
    )
    text = result.explanation
    assert "Tasks: 0 = increment (tests/tasks/async_programs.py:" in text
    # Each access at its own line, not at the step's first instruction.
    assert re.search(r"task 0 \| tests/tasks/async_programs\.py:\d+ +v = c\.value +\[read Counter\.value\]", text)
    assert re.search(r"task 1 \| tests/tasks/async_programs\.py:\d+ +c\.value = v \+ 1 +\[write Counter\.value\]", text)
    assert "yielded at tests/tasks/async_programs.py:" in text
    assert "(await asyncio.sleep(0))" in text
    assert "frontrun.replay_async(" in text


def test_an_async_function_may_call_explore_async() -> None:
    async def main() -> frontrun.InterleavingResult:
        return frontrun.explore_async(
            p.Counter, [p.increment, p.increment], lambda c: c.value == 2, preemption_bound=None
        )

    assert asyncio.run(main()).property_holds is False


def test_async_setup_and_invariant_are_awaited() -> None:
    async def setup() -> p.Counter:
        await asyncio.sleep(0)
        return p.Counter()

    async def invariant(c: p.Counter) -> bool:
        await asyncio.sleep(0)
        return c.value == 2

    result = frontrun.explore_async(setup, [p.increment_locked, p.increment_locked], invariant, preemption_bound=None)
    assert result.property_holds is True


def test_a_callback_that_raises_is_an_error_of_the_task_whose_step_ran_it() -> None:
    result = frontrun.explore_async(p.Counter, [p.callback_raises], lambda c: c.value == 1, preemption_bound=None)
    assert result.property_holds is False
    assert isinstance(result.errors.get(0), ValueError)
    assert "Task 0 raised ValueError: boom in a done callback" in result.explanation


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.Barrier is new in Python 3.11")
def test_a_barrier_lets_no_task_through_before_both_arrived() -> None:
    result = frontrun.explore_async(
        p.Rendezvous,
        [p.meet("a"), p.meet("b")],
        lambda r: r.after == [["a", "b"], ["a", "b"]],
        preemption_bound=None,
    )
    assert result.property_holds is True
    assert result.exhausted
    assert result.num_explored >= 2
