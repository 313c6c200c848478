"""Workers that call the ``_native_locks`` C extension (built from
native_locks.c by the test), whose functions take pthread mutexes with the
GIL released.

    python native_locks.py <build dir> <mode> [deadlock_timeout]

``abba``: one worker locks mutex 0 then 1, the other 1 then 0 (a
deadlock); ``same-order``: both lock 0 then 1; ``abba-holding-gil``: abba
without releasing the GIL; ``counter``: both add one to a C counter under a
mutex; ``held-across``: both add one to a Python counter while holding a
native mutex they lock and unlock in separate calls (and, before locking,
write a mark the other reads while holding it). Prints one line
``RESULT <json>``.
"""

from __future__ import annotations

import json
import sys
import time

sys.path.insert(0, sys.argv[1])

import _native_locks
import frontrun

MODE = sys.argv[2]
DEADLOCK_TIMEOUT = float(sys.argv[3]) if len(sys.argv) > 3 else 5.0
ORDERS = {"abba": [(0, 1), (1, 0)], "same-order": [(0, 1), (0, 1)], "abba-holding-gil": [(0, 1), (1, 0)]}


class Counter:
    def __init__(self) -> None:
        self.value = 0
        self.codes = [-1, -1]
        self.marks = [0, 0]
        self.seen = [-1, -1]


def setup() -> Counter:
    _native_locks.reset()
    return Counter()


def taker(i: int, first: int, second: int):
    take = _native_locks.take_holding_gil if MODE == "abba-holding-gil" else _native_locks.take

    def work(state: Counter) -> None:
        state.codes[i] = take(first, second)

    return work


def guarded(i: int):
    def work(state: Counter) -> None:
        state.marks[i] = 1
        state.codes[i] = _native_locks.acquire(0)
        # Races with the other worker's mark, written before it locks: the
        # exploration runs that write while this worker holds the mutex.
        state.seen[i] = state.marks[1 - i]
        state.value += 1
        _native_locks.release(0)

    return work


def incrementer(i: int):
    def work(state: Counter) -> None:
        state.codes[i] = _native_locks.increment()

    return work


if MODE == "counter":
    threads = [incrementer(0), incrementer(1)]
elif MODE == "held-across":
    threads = [guarded(0), guarded(1)]
else:
    threads = [taker(i, *o) for i, o in enumerate(ORDERS[MODE])]


def invariant(state: Counter) -> bool:
    if MODE == "held-across":
        return state.value == 2
    return _native_locks.value() == 2


start = time.monotonic()
result = frontrun.explore_dpor(
    setup,
    threads,
    invariant,
    preemption_bound=None,
    deadlock_timeout=DEADLOCK_TIMEOUT,
)
elapsed = time.monotonic() - start
deadlock = result.deadlock
print(
    "RESULT "
    + json.dumps(
        {
            "holds": result.property_holds,
            "executions": result.num_explored,
            "explanation": result.explanation,
            "deadlock": deadlock.describe() if deadlock is not None else None,
            "cycle": [str(e) for e in deadlock.cycle] if deadlock is not None else [],
            "native_events": result.native_events,
            "events_lost": result.events_lost,
            "inconclusive": [list(i) for i in result.inconclusive],
            "exhausted": result.exhausted,
            "seconds": elapsed,
        }
    )
)
