"""Workers that call the ``_native_threads`` C extension (built from
native_threads.c by the test), whose functions start their own pthreads.

    python native_threads.py <build dir> <mode>

A counter kept in a file: worker 0 adds one to it in a thread the
extension starts, worker 1 in Python (os.read, then os.write).

``joined``: the extension starts the thread and joins it in one call (a
lost update); ``later``: it starts it in one call and joins it in another,
after a Python step of the worker (a lost update); ``locked``: as
``joined``, each update under one ``threading.Lock`` (holds); ``outlives``:
as ``locked``, and worker 0 then starts a thread that is still waiting when
it ends (holds, with a note). Prints one line ``RESULT <json>``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading

sys.path.insert(0, sys.argv[1])

import _native_threads
import frontrun
from result_line import print_result

MODE = sys.argv[2]
DIR = tempfile.mkdtemp()
PATH = os.path.join(DIR, "counter")


class State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.marks = 0


def setup() -> State:
    # The previous execution's waiting thread, if any, ends here.
    assert _native_threads.release_blocked() == 0
    fd = os.open(PATH, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, b"0")
    os.close(fd)
    return State()


def native_worker(state: State) -> None:
    if MODE == "later":
        assert _native_threads.start_bump(PATH) == 0
        state.marks += 1
        assert _native_threads.join_bump() == 0
    elif MODE in ("locked", "outlives"):
        with state.lock:
            assert _native_threads.bump_in_thread(PATH) == 0
        if MODE == "outlives":
            assert _native_threads.start_blocked() == 0
    else:
        assert _native_threads.bump_in_thread(PATH) == 0


def python_worker(state: State) -> None:
    def bump() -> None:
        fd = os.open(PATH, os.O_RDWR)
        value = int(os.read(fd, 32))
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, str(value + 1).encode())
        os.close(fd)

    if MODE in ("locked", "outlives"):
        with state.lock:
            bump()
    else:
        bump()


def counter(_state: State) -> int:
    with open(PATH) as f:
        return int(f.read())


result = frontrun.explore_dpor(
    setup,
    [native_worker, python_worker],
    lambda s: counter(s) == 2,
    preemption_bound=None,
    stop_on_first=MODE in ("joined", "later"),
)
assert _native_threads.release_blocked() == 0
os.unlink(PATH)
os.rmdir(DIR)
print_result(result)
