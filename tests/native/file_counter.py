"""A counter kept in a file and updated with os.open/os.read/os.write: under
libfrontrun_io.so only the library's events see these calls (the
Python-level wrappers of frontrun._io stay out of its way); without it, the
Python-level wrappers do.

    python file_counter.py same|separate|guarded|started [no-detect-io]

``same``: both workers update one file (a lost update); ``separate``: each
its own file (no conflict); ``guarded``: one file, each update inside a
``pthread_mutex_lock``/``unlock`` pair called through ctypes (C code outside
the interpreter, so the library reports the mutex); ``started``: as
``same``, the first worker's update made by a thread it starts and joins.
Prints one line
``RESULT <json>``.
"""

from __future__ import annotations

import ctypes
import os
import sys
import tempfile
import threading

import frontrun
from result_line import print_result

MODE = sys.argv[1]
DETECT_IO = sys.argv[2:] != ["no-detect-io"]
DIR = tempfile.mkdtemp()
PATHS = (
    [os.path.join(DIR, "counter")] * 2 if MODE != "separate" else [os.path.join(DIR, f"counter{i}") for i in range(2)]
)
LIBC = ctypes.CDLL(None)
# A zeroed pthread_mutex_t is a default mutex (PTHREAD_MUTEX_INITIALIZER).
MUTEX = ctypes.create_string_buffer(64)


def setup() -> list[str]:
    for path in set(PATHS):
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, b"0")
        os.close(fd)
    return PATHS


def increment(i: int):
    def work(paths: list[str]) -> None:
        if MODE == "guarded":
            LIBC.pthread_mutex_lock(MUTEX)
        fd = os.open(paths[i], os.O_RDWR)
        value = int(os.read(fd, 32))
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, str(value + 1).encode())
        os.close(fd)
        if MODE == "guarded":
            LIBC.pthread_mutex_unlock(MUTEX)

    if MODE == "started" and i == 0:

        def start_and_join(paths: list[str]) -> None:
            t = threading.Thread(target=work, args=(paths,))
            t.start()
            t.join()

        return start_and_join
    return work


def total(paths: list[str]) -> int:
    out = 0
    for path in set(paths):
        with open(path) as f:
            out += int(f.read())
    return out


result = frontrun.explore_dpor(
    setup,
    [increment(0), increment(1)],
    lambda p: total(p) == 2,
    preemption_bound=None,
    stop_on_first=MODE != "guarded",
    detect_io=DETECT_IO,
)
for path in set(PATHS):
    os.unlink(path)
os.rmdir(DIR)
print_result(result)
