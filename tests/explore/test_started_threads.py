"""A thread that a worker starts runs outside the scheduler and untraced,
so a lost update done in it is never seen: the execution must say it was
not checked instead of passing (it used to hold after one execution)."""

from __future__ import annotations

import _thread
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from _helpers import explore


class Counter:
    def __init__(self) -> None:
        self.value = 0


def _increment(c: Counter) -> None:
    current = c.value
    c.value = current + 1


def _via_thread(c: Counter) -> None:
    t = threading.Thread(target=_increment, args=(c,))
    t.start()
    t.join()


def _via_pool(c: Counter) -> None:
    with ThreadPoolExecutor(1) as pool:
        pool.submit(_increment, c).result()


def _via_start_new_thread(c: Counter) -> None:
    done = _thread.allocate_lock()
    done.acquire()

    def run() -> None:
        _increment(c)
        done.release()

    _thread.start_new_thread(run, ())
    done.acquire()


@pytest.mark.parametrize(
    ("worker", "how", "line"),
    [
        (_via_thread, "threading.Thread.start", "test_started_threads.py:27 in _via_thread"),
        (_via_pool, "ThreadPoolExecutor.submit", "test_started_threads.py:33 in _via_pool"),
        (_via_start_new_thread, "_thread.start_new_thread", "in _via_start_new_thread"),
    ],
)
def test_a_lost_update_in_threads_the_workers_start_is_not_a_pass(worker: object, how: str, line: str) -> None:
    result = explore(Counter, [worker, worker], lambda c: c.value == 2)
    assert result.verdict == "inconclusive" and result.property_holds is None
    why = result.inconclusive[0][1]
    assert f"thread 0 started a thread ({how} at " in why, why
    assert line in why, why
    assert "not checked" in why


def test_the_wrappers_are_gone_after_the_exploration() -> None:
    real = threading.Thread.start
    explore(Counter, [_via_thread, _increment], lambda c: True)
    assert threading.Thread.start is real
    assert ThreadPoolExecutor.submit.__qualname__ == "ThreadPoolExecutor.submit"
    assert getattr(_thread.start_new_thread, "__wrapped__", None) is None
