"""Full DPOR reaches every end state that other schedules reach.

The engine's own cross-check (engine/tests) compares trace counts against
brute-force enumeration on abstract programs. This one runs real Python
programs of the kinds where object keys are hardest to keep stable across
executions: objects and locks created lazily inside workers, calls through
wrappers, exceptions raised and caught. Every schedule of such a program is
too many to run at bytecode granularity, so the other side is a few hundred
schedules per program, each a random prefix that ``replay`` follows and then
completes: every end state one of them reaches, full DPOR must reach too,
and (the suite's conftest checks it) without ending an execution sleep-set
blocked.
"""

from __future__ import annotations

import functools
import random
import threading
from collections import defaultdict
from typing import Any

import frontrun
import pytest


def _through_wrapper(fn: Any) -> Any:
    @functools.wraps(fn)
    def inner(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except LookupError:
            return "missing"

    return inner


class Store:
    """State of the generated programs."""

    def __init__(self) -> None:
        self.locks: defaultdict[str, Any] = defaultdict(threading.Lock)
        self.boxes: dict[str, dict[str, int]] = {}
        self.log: list[str] = []
        self.out: dict[int, Any] = {}
        self.seen: defaultdict[str, list[int]] = defaultdict(list)


# The operations a generated worker is made of. Each takes the store and a
# key; some create objects on first use, some raise and catch.


def op_bump_locked(s: Store, key: str) -> Any:
    with s.locks[key]:  # the lock itself is created by whoever comes first
        box = s.boxes.setdefault(key, {"n": 0})
        box["n"] = box["n"] + 1
        return box["n"]


def op_bump_unlocked(s: Store, key: str) -> Any:
    box = s.boxes.setdefault(key, {"n": 0})
    n = box["n"]
    box["n"] = n + 1
    return n


@_through_wrapper
def op_read(s: Store, key: str) -> Any:
    return s.boxes[key]["n"]  # KeyError while nobody made the box


def op_reset(s: Store, key: str) -> Any:
    try:
        del s.boxes[key]
    except KeyError:
        return "absent"
    s.log.append(key)
    return "reset"


def op_touch(s: Store, key: str) -> Any:
    return len(s.seen[key])  # a read that inserts the key when it is missing


def op_has(s: Store, key: str) -> Any:
    return key in s.seen  # a plain read: ordered against the inserting one


OPS = [op_bump_locked, op_bump_unlocked, op_read, op_reset, op_touch, op_has]


def _program(seed: int) -> list[Any]:
    rng = random.Random(seed)
    threads = []
    for t in range(rng.choice([2, 2, 3])):
        steps = [(rng.choice(OPS), rng.choice("ab")) for _ in range(rng.choice([1, 2]))]

        def worker(s: Store, steps: list[Any] = steps, t: int = t) -> None:
            s.out[t] = [op(s, key) for op, key in steps]

        threads.append(worker)
    return threads


def _end_state(s: Store) -> tuple[Any, ...]:
    return (
        tuple(sorted((k, v["n"]) for k, v in s.boxes.items())),
        tuple(s.log),
        tuple(sorted(s.seen)),
        tuple(sorted((t, tuple(map(str, r))) for t, r in s.out.items())),
    )


def _sampled(threads: list[Any], seed: int, samples: int = 150) -> set[tuple[Any, ...]]:
    rng = random.Random(seed)
    seen: set[tuple[Any, ...]] = set()
    for _ in range(samples):
        prefix = [rng.randrange(len(threads)) for _ in range(rng.randrange(1, 40))]
        run = frontrun.replay(prefix, Store, threads, detect_io=False)
        if run.aborted is not None:
            continue  # the prefix named a thread that had finished
        assert not run.errors, run.errors
        seen.add(_end_state(run.state))
    return seen


def _dpor(threads: list[Any]) -> tuple[set[tuple[Any, ...]], frontrun.InterleavingResult]:
    seen: set[tuple[Any, ...]] = set()

    def record(s: Store) -> bool:
        seen.add(_end_state(s))
        return True

    result = frontrun.explore_dpor(Store, threads, record, preemption_bound=None, stop_on_first=False, detect_io=False)
    return seen, result


@pytest.mark.parametrize("seed", range(40))
def test_full_dpor_reaches_every_end_state_sampled_schedules_reach(seed: int) -> None:
    threads = _program(seed)
    sampled = _sampled(threads, seed)
    reached, result = _dpor(threads)
    assert result.verdict == "holds" and result.exhausted, result.scope
    assert sampled, "no sampled schedule ran to its end"
    assert sampled <= reached, sorted(sampled - reached)
