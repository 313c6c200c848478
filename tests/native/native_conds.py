"""Workers that call the ``_native_conds`` C extension (built from
native_conds.c by the test), which waits on and signals a pthread condition
variable with the GIL released.

    python native_conds.py <build dir> <mode> [deadlock_timeout]

``handshake``: a consumer takes from the mailbox (a predicate loop around
``pthread_cond_wait``) what a producer puts (``pthread_cond_signal``);
``missed``: the consumer waits once without checking the mailbox (a missed
signal when the producer runs first); ``timed``: the consumer waits 30 s at
most with ``pthread_cond_timedwait`` and nobody puts; ``broadcast``: two
consumers peek, the producer broadcasts; ``unlocked-gil``: handshake
whose producer fills the mailbox and signals without the mutex, holding the
GIL (its signal is no scheduling point of its own). Prints one line ``RESULT <json>``.
"""

from __future__ import annotations

import errno
import json
import sys
import time

sys.path.insert(0, sys.argv[1])

import _native_conds
import frontrun

MODE = sys.argv[2]
DEADLOCK_TIMEOUT = float(sys.argv[3]) if len(sys.argv) > 3 else 5.0


class Box:
    def __init__(self) -> None:
        self.got = [None, None]
        self.put = None
        self.other = 0


def setup() -> Box:
    _native_conds.reset()
    return Box()


def producer(state: Box) -> None:
    if MODE == "broadcast":
        state.put = _native_conds.put_all(42)
    elif MODE == "unlocked-gil":
        state.put = _native_conds.put_unlocked_holding_gil(42)
    else:
        state.put = _native_conds.put(42)


def consumer(i: int):
    def work(state: Box) -> None:
        if MODE == "missed":
            state.got[i] = _native_conds.take_once()
        elif MODE == "timed":
            state.got[i] = _native_conds.take_within(30_000)
        elif MODE == "broadcast":
            state.got[i] = _native_conds.peek()
        else:
            state.got[i] = _native_conds.take()

    return work


def bystander(state: Box) -> None:
    state.other += 1


if MODE == "timed":
    threads = [consumer(0), bystander]
elif MODE == "broadcast":
    threads = [consumer(0), consumer(1), producer]
else:
    threads = [consumer(0), producer]


def invariant(state: Box) -> bool:
    if MODE == "timed":
        return state.got[0] == -errno.ETIMEDOUT and state.other == 1
    if MODE == "broadcast":
        return state.got == [42, 42] and state.put == 0
    return state.got[0] == 42 and state.put == 0


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
            "native_events": result.native_events,
            "events_lost": result.events_lost,
            "inconclusive": [list(i) for i in result.inconclusive],
            "seconds": elapsed,
        }
    )
)
