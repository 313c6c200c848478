"""Workloads for scripts/bench.d/explore, run in a fresh process per sample.

    python explore_workloads.py IMPL WORKLOAD

IMPL is "ours" (this repository's frontrun) or "peer" (PyPI frontrun 0.7.0,
installed in its own venv). Prints one JSON line: executions explored,
seconds spent in the exploration call, and the number of instructions the
workers execute in one serial run (counted separately, identical for both).
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any


class Counter:
    def __init__(self) -> None:
        self.value = 0


class Shared:
    def __init__(self) -> None:
        self.x = 0


def increment(c: Counter) -> None:
    tmp = c.value
    c.value = tmp + 1


def writer(s: Shared) -> None:
    s.x = 1


def reader(s: Shared) -> None:
    _ = s.x


class Objects:
    def __init__(self, n: int) -> None:
        self.objs = [Counter() for _ in range(n)]


def make_own_incrementer(i: int, rounds: int = 50) -> Any:
    def work(state: Objects) -> None:
        obj = state.objs[i]
        for _ in range(rounds):
            obj.value = obj.value + 1

    return work


def workload(name: str) -> tuple[Any, list[Any], Any]:
    if name == "counter2":
        return Counter, [increment] * 2, lambda c: c.value == 2
    if name == "counter3":
        return Counter, [increment] * 3, lambda c: c.value == 3
    if name == "readers8":
        return Shared, [writer] + [reader] * 8, lambda s: True
    if name == "independent8x50":
        return (lambda: Objects(8)), [make_own_incrementer(i) for i in range(8)], lambda s: True
    if name == "independent8x500":
        # With independent8x50, gives the marginal cost of a traced
        # instruction, free of per-exploration fixed costs.
        return (lambda: Objects(8)), [make_own_incrementer(i, 500) for i in range(8)], lambda s: True
    raise SystemExit(f"unknown workload {name}")


def count_instructions(setup: Any, threads: list[Any]) -> int:
    """Instructions the thread bodies execute when run serially."""
    count = 0
    here = os.path.abspath(__file__)

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        nonlocal count
        if frame.f_code.co_filename != here:
            return None
        frame.f_trace_opcodes = True
        if event == "opcode":
            count += 1
        return tracer

    state = setup()
    for fn in threads:
        sys.settrace(tracer)
        try:
            fn(state)
        finally:
            sys.settrace(None)
    return count


def main() -> None:
    impl, name = sys.argv[1], sys.argv[2]
    setup, threads, invariant = workload(name)
    kwargs: dict[str, Any] = dict(
        preemption_bound=None,
        stop_on_first=False,
        detect_io=False,
        reproduce_on_failure=0,
        max_executions=100_000,
    )
    if impl == "ours":
        import frontrun

        start = time.perf_counter()
        result = frontrun.explore_dpor(setup, threads, invariant, **kwargs)
        elapsed = time.perf_counter() - start
    else:
        os.environ["FRONTRUN_ACTIVE"] = "1"
        import frontrun

        start = time.perf_counter()
        result = frontrun.explore(setup, threads, invariant, strategy="dpor", **kwargs)
        elapsed = time.perf_counter() - start
    print(
        json.dumps(
            {
                "impl": impl,
                "workload": name,
                "executions": result.num_explored,
                "seconds": elapsed,
                "instructions": count_instructions(setup, threads),
                "property_holds": result.property_holds,
            }
        )
    )


if __name__ == "__main__":
    main()
