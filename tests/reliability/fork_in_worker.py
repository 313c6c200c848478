"""Workers that fork: ``os.fork`` and multiprocessing's fork start method.

    python fork_in_worker.py os_fork|returning_child|multiprocessing|exploring_child

Each mode runs one exploration whose first worker forks; the child must run
freely (it is not an explored thread) and end by itself. The parent waits
for it at most ``PATIENCE`` seconds, then kills it and records "hung".
Prints one line ``RESULT <json>``.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sys
import time

import frontrun

MODE = sys.argv[1]
PATIENCE = 5.0


class State:
    def __init__(self) -> None:
        self.x = 0
        self.children: list[object] = []


def wait_for(pid: int) -> object:
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.005)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return "hung"


def lost_update_found() -> bool:
    class Counter:
        def __init__(self) -> None:
            self.value = 0

    def incr(c: Counter) -> None:
        tmp = c.value
        c.value = tmp + 1

    r = frontrun.explore_dpor(Counter, [incr, incr], lambda c: c.value == 2, detect_io=False, reproduce_on_failure=1)
    return not r.property_holds


def child_body(s: State) -> None:
    # Shared accesses in the child: in the parent they would be scheduling
    # points, and a schedule may want the other thread next.
    for _ in range(5):
        s.x += 1


def forking_worker(s: State) -> None:
    s.x += 1
    if MODE == "multiprocessing":
        p = multiprocessing.get_context("fork").Process(target=child_body, args=(s,))
        p.start()
        p.join(PATIENCE)
        if p.exitcode is None:
            p.kill()
            p.join()
            s.children.append("hung")
        else:
            s.children.append(p.exitcode)
        s.x += 1
        return
    pid = os.fork()
    if pid == 0:
        if MODE == "exploring_child":
            os._exit(3 if lost_update_found() else 4)
        child_body(s)
        if MODE == "os_fork":
            os._exit(7)
        # returning_child: the worker function returns in the child.
        return
    s.x += 1
    s.children.append(wait_for(pid))


def other_worker(s: State) -> None:
    s.x += 1
    s.x += 1


expected = {"os_fork": 7, "returning_child": 0, "multiprocessing": 0, "exploring_child": 3}[MODE]
started = time.monotonic()
result = frontrun.explore_dpor(
    State,
    [forking_worker, other_worker],
    lambda s: s.children == [expected],
    detect_io=False,
    preemption_bound=None,
    stop_on_first=False,
    max_executions=40,
    timeout_per_run=30.0,
    # The parent polls a real child process against a deadline: real time.
    virtual_time=False,
)
print(
    "RESULT "
    + json.dumps(
        {
            "pid": os.getpid(),
            "holds": result.property_holds,
            "executions": result.num_explored,
            "failures": len(result.failures),
            "inconclusive": result.inconclusive,
            "seconds": round(time.monotonic() - started, 2),
            "explanation": result.explanation,
        }
    ),
    flush=True,
)
