"""A counter kept in a file, incremented by one worker in a process it
starts and by the other in-process (os.read/os.write), under
libfrontrun_io.so: the child's file events must be the starting worker's.

    python child_counter.py subprocess|shell|fork|spawn|background [locked]

``subprocess``: ``subprocess.run`` of a Python child that increments;
``shell``: the same through ``sh -c`` (the increment is a grandchild);
``fork`` and ``spawn``: a ``multiprocessing.Process`` of that start method;
``background``: a ``subprocess.Popen`` of that child, never waited for.
``locked``: both increments under one lock (the worker holds it around the
child's run), so no update is lost. Prints one line ``RESULT <json>``.
"""

from __future__ import annotations

import multiprocessing
import os
import shlex
import subprocess
import sys
import tempfile
import threading

import frontrun
from result_line import print_result

INCREMENT = (
    "import os, sys\n"
    "fd = os.open(sys.argv[1], os.O_RDWR)\n"
    "value = int(os.read(fd, 32))\n"
    "os.lseek(fd, 0, os.SEEK_SET)\n"
    "os.write(fd, str(value + 1).encode())\n"
    "os.close(fd)\n"
)


def increment_file(path: str) -> None:
    fd = os.open(path, os.O_RDWR)
    value = int(os.read(fd, 32))
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, str(value + 1).encode())
    os.close(fd)


class State:
    def __init__(self, path: str) -> None:
        self.path = path
        self.lock = threading.Lock()
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, b"0")
        os.close(fd)


def run_child(mode: str, path: str) -> None:
    if mode == "subprocess":
        subprocess.run([sys.executable, "-c", INCREMENT, path], check=True)
    elif mode == "background":
        subprocess.Popen([sys.executable, "-c", INCREMENT, path])
    elif mode == "shell":
        command = f"{shlex.quote(sys.executable)} -c {shlex.quote(INCREMENT)} {shlex.quote(path)}; true"
        subprocess.run(["sh", "-c", command], check=True)
    else:
        child = multiprocessing.get_context(mode).Process(target=increment_file, args=(path,))
        child.start()
        child.join()
        assert child.exitcode == 0, child.exitcode


def main() -> None:
    mode = sys.argv[1]
    locked = sys.argv[2:] == ["locked"]
    path = os.path.join(tempfile.mkdtemp(), "counter")

    def in_child(s: State) -> None:
        if locked:
            with s.lock:
                run_child(mode, s.path)
        else:
            run_child(mode, s.path)

    def in_process(s: State) -> None:
        if locked:
            with s.lock:
                increment_file(s.path)
        else:
            increment_file(s.path)

    def total(s: State) -> bool:
        with open(s.path) as f:
            return int(f.read()) == 2

    result = frontrun.explore_dpor(
        lambda: State(path),
        [in_child, in_process],
        total,
        preemption_bound=None,
        stop_on_first=not locked,
        reproduce_on_failure=3,
    )
    os.unlink(path)
    os.rmdir(os.path.dirname(path))
    print_result(result)


if __name__ == "__main__":
    main()
