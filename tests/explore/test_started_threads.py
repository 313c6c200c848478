"""Threads that a worker starts are explored: spawned in the explorer by
the worker's step, traced and scheduled like the workers, joined through
the explorer. (They used to run outside the scheduler, untraced, so a lost
update in one was never seen; then the execution was reported as not
checked.) Work handed to a ThreadPoolExecutor is still not explored, and
says so."""

from __future__ import annotations

import _thread
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import frontrun
import pytest
from _helpers import explore, explore_all


class Counter:
    def __init__(self) -> None:
        self.value = 0
        self.lock = threading.Lock()


def _increment(c: Counter) -> None:
    current = c.value
    c.value = current + 1


def _locked_increment(c: Counter) -> None:
    with c.lock:
        _increment(c)


def _via_thread(c: Counter) -> None:
    t = threading.Thread(target=_increment, args=(c,))
    t.start()
    t.join()


def _via_thread_locked(c: Counter) -> None:
    t = threading.Thread(target=_locked_increment, args=(c,))
    t.start()
    t.join()


def _twice(c: Counter) -> None:
    t = threading.Thread(target=_increment, args=(c,))
    t.start()
    _increment(c)
    t.join()


def _twice_locked(c: Counter) -> None:
    t = threading.Thread(target=_locked_increment, args=(c,))
    t.start()
    _locked_increment(c)
    t.join()


def test_a_lost_update_in_a_started_thread_is_found_and_named() -> None:
    result = explore(Counter, [_via_thread, _increment], lambda c: c.value == 2)
    assert result.property_holds is False
    text = result.explanation or ""
    assert "2 = _increment (started by thread 0 at test_started_threads.py:39 in _via_thread)" in text, text
    assert "lost update on Counter.value" in text, text
    assert "thread 2" in text and "thread 1" in text
    assert result.reproduction_successes == result.reproduction_attempts == 3


def test_the_locked_twin_holds_after_every_order() -> None:
    result = explore_all(Counter, [_via_thread_locked, _locked_increment], lambda c: c.value == 2)
    assert result.verdict == "holds" and result.exhausted and not result.inconclusive
    # One execution finds the start and asks for spare thread ids; then the
    # two orders of the critical sections.
    assert result.num_explored == 1 + 2


def test_a_started_thread_races_with_its_own_starter() -> None:
    # The starter goes on after start(): its own increment races with the
    # thread's, and the other worker's with both (three increments: 36
    # traces, as counter(3)).
    result = explore_all(Counter, [_twice, _increment], lambda c: True)
    assert result.exhausted and result.num_explored == 1 + 36
    twin = explore_all(Counter, [_twice_locked, _locked_increment], lambda c: c.value == 3)
    assert twin.verdict == "holds" and twin.num_explored == 1 + 6


def test_the_join_orders_the_threads_steps_before_what_follows_it() -> None:
    def start_join_then_write(c: Counter) -> None:
        t = threading.Thread(target=_increment, args=(c,))
        t.start()
        t.join()
        c.value *= 10

    # Without the join's edge the thread's increment could come after the
    # multiplication: (0*10)+1 = 1. With it only 10 is possible.
    result = explore_all(Counter, [start_join_then_write], lambda c: c.value == 10)
    assert result.verdict == "holds" and result.exhausted


def test_a_join_on_a_thread_waiting_for_the_joiners_lock_is_a_deadlock_found_at_once() -> None:
    def hold_and_join(c: Counter) -> None:
        with c.lock:
            t = threading.Thread(target=_locked_increment, args=(c,))
            t.start()
            t.join()

    start = time.monotonic()
    result = explore(Counter, [hold_and_join], lambda c: True, deadlock_timeout=30.0)
    assert time.monotonic() - start < 10
    assert result.property_holds is False and result.deadlock is not None
    assert "deadlock" in (result.explanation or "").lower()


def test_a_timed_join_times_out_only_when_nothing_else_can_happen() -> None:
    class Gate:
        def __init__(self) -> None:
            self.open = threading.Event()
            self.timed_out = 0

    def join_then_open(g: Gate) -> None:
        t = threading.Thread(target=g.open.wait)
        t.start()
        t.join(timeout=30.0)  # modelled: returns at once once all wait
        if t.is_alive():
            g.timed_out += 1
        g.open.set()
        t.join()

    start = time.monotonic()
    result = explore_all(Gate, [join_then_open], lambda g: g.timed_out == 1)
    assert time.monotonic() - start < 10
    assert result.verdict == "holds" and result.exhausted and result.deadlock is None


def test_a_thread_started_with_start_new_thread_is_explored() -> None:
    def via_start_new_thread(c: Counter) -> None:
        done = threading.Event()

        def run() -> None:
            _increment(c)
            done.set()

        _thread.start_new_thread(run, ())
        done.wait()

    result = explore(Counter, [via_start_new_thread, _increment], lambda c: c.value == 2)
    assert result.property_holds is False
    assert "started by thread 0 at test_started_threads.py" in (result.explanation or "")


def test_a_thread_never_joined_is_explored_to_its_end_and_named_in_the_notes() -> None:
    def fire_and_forget(c: Counter) -> None:
        threading.Thread(target=_locked_increment, args=(c,), name="forgotten").start()

    result = explore_all(Counter, [fire_and_forget, _locked_increment], lambda c: c.value == 2)
    assert result.verdict == "holds" and result.exhausted
    assert any("thread 2 (forgotten), started by thread 0" in n and "never joined" in n for n in result.notes)


def test_an_exception_in_a_started_thread_is_a_failure_of_that_thread() -> None:
    def boom(c: Counter) -> None:
        raise ValueError("in the started thread")

    def starts_boom(c: Counter) -> None:
        t = threading.Thread(target=boom, args=(c,))
        t.start()
        t.join()

    result = explore(Counter, [starts_boom], lambda c: True)
    assert result.property_holds is False
    assert isinstance(result.errors.get(1), ValueError), result.errors


def test_threads_started_by_started_threads_are_explored_too() -> None:
    def nested(c: Counter) -> None:
        t = threading.Thread(target=_via_thread, args=(c,))
        t.start()
        t.join()

    result = explore(Counter, [nested, _increment], lambda c: c.value == 2)
    assert result.property_holds is False
    assert "3 = _increment (started by thread 2 at" in (result.explanation or "")


def test_more_threads_than_the_spare_ids_is_inconclusive_naming_the_place() -> None:
    def many(c: Counter) -> None:
        ts = [threading.Thread(target=_locked_increment, args=(c,)) for _ in range(9)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()

    result = explore(Counter, [many], lambda c: True, max_executions=3)
    assert result.verdict == "inconclusive"
    why = result.inconclusive[0][1]
    assert "started more than 8 threads in one execution" in why and "test_started_threads.py" in why, why


def test_the_failure_replays_from_its_token() -> None:
    result = explore(Counter, [_via_thread, _increment], lambda c: c.value == 2)
    token = (result.explanation or "").split('@frontrun.reproduce("')[1].split('")')[0]
    replayed = frontrun.replay(token, Counter, [_via_thread, _increment], lambda c: c.value == 2, detect_io=False)
    assert replayed.invariant_holds is False and replayed.failed
    assert "2 = _increment (started by thread 0" in (replayed.explanation or "")

    @frontrun.reproduce(token)
    def again() -> Any:
        return explore(Counter, [_via_thread, _increment], lambda c: c.value == 2)

    forced = again()
    assert forced.property_holds is False and forced.num_explored == 1


def _via_pool(c: Counter) -> None:
    with ThreadPoolExecutor(1) as pool:
        pool.submit(_increment, c).result()


class Pooled(Counter):
    def __init__(self) -> None:
        super().__init__()
        self.pool = ThreadPoolExecutor(2)


def _submit_and_increment(c: Pooled) -> None:
    done = c.pool.submit(_increment, c)
    _increment(c)
    done.result()


def _submit_and_increment_locked(c: Pooled) -> None:
    done = c.pool.submit(_locked_increment, c)
    _locked_increment(c)
    done.result()


def test_a_race_between_a_worker_and_the_task_it_submitted_to_a_pool_is_found() -> None:
    result = explore(Pooled, [_submit_and_increment], lambda c: c.value == 2)
    assert result.property_holds is False
    text = result.explanation or ""
    assert "1 = worker 0 of a ThreadPoolExecutor (started by thread 0 at test_started_threads.py:" in text, text
    assert "lost update on Pooled.value" in text, text
    assert result.reproduction_successes == result.reproduction_attempts


def test_the_pools_locked_twin_holds_conclusively() -> None:
    result = explore_all(Pooled, [_submit_and_increment_locked, _locked_increment], lambda c: c.value == 3)
    assert result.verdict == "holds" and result.exhausted and not result.inconclusive
    # The pool made in setup() is never shut down: its idle worker waits
    # for work at the end, which is no deadlock, and the notes say so.
    assert any("worker 0 of a ThreadPoolExecutor) was still waiting" in n for n in result.notes), result.notes


def test_a_pool_made_and_shut_down_by_the_worker_holds_with_nothing_left_waiting() -> None:
    result = explore_all(Counter, [_via_pool, _locked_increment], lambda c: c.value == 2)
    assert result.verdict == "race"
    locked = explore_all(
        Counter,
        [lambda c: _via_pool_locked(c), _locked_increment],
        lambda c: c.value == 2,
    )
    assert locked.verdict == "holds" and locked.exhausted and locked.notes == []


def _via_pool_locked(c: Counter) -> None:
    with ThreadPoolExecutor(1) as pool:
        pool.submit(_locked_increment, c).result()


_OLD_POOL = ThreadPoolExecutor(1)
_OLD_POOL.submit(lambda: None).result()  # its thread runs outside any exploration


def _via_old_pool(c: Counter) -> None:
    _OLD_POOL.submit(_increment, c).result()


def test_work_handed_to_a_pool_whose_threads_frontrun_did_not_start_is_not_a_pass() -> None:
    result = explore(Counter, [_via_old_pool, _via_old_pool], lambda c: c.value == 2)
    assert result.verdict == "inconclusive" and result.property_holds is None
    why = result.inconclusive[0][1]
    assert "handed work to a thread pool (ThreadPoolExecutor.submit at test_started_threads.py:" in why, why
    assert "in _via_old_pool" in why and "not checked" in why


@pytest.mark.parametrize("worker", [_via_thread, _via_pool])
def test_the_wrappers_are_gone_after_the_exploration(worker: Any) -> None:
    real_join = threading.Thread.join
    explore(Counter, [worker, _increment], lambda c: True)
    assert threading.Thread.join is real_join
    assert ThreadPoolExecutor.submit.__qualname__ == "ThreadPoolExecutor.submit"
    assert getattr(_thread.start_new_thread, "__wrapped__", None) is None
