"""While an exploration is attached to the ring, child processes of four
threads each write to a file as fast as they can and are SIGKILLed by
``subprocess.run(timeout=...)``, wherever their threads are; a kill can
land between a thread taking a slot of the ring and publishing it. Then a
lost update on a file counter must still be found through native events.

Prints one line ``RESULT <json>``.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import tempfile
import threading
import time

import frontrun

DIR = tempfile.mkdtemp()
ROUNDS = 30

WRITER = """
import os, sys, threading
def spin(n):
    fd = os.open(os.path.join(sys.argv[1], f"noise{n}"), os.O_WRONLY | os.O_CREAT, 0o600)
    while True:
        os.write(fd, b"y")
threads = [threading.Thread(target=spin, args=(n,)) for n in range(4)]
for t in threads:
    t.start()
print("running", flush=True)
for t in threads:
    t.join()
"""

killed = 0
# Mutex events too: the interpreter's own mutexes (the GIL changing hands
# between the four threads) then keep the threads inside the ring's code
# much of the time, so that kills land there.
WRITER_ENV = dict(os.environ, FRONTRUN_MUTEX="1")


def kill_writers() -> None:
    global killed
    for i in range(ROUNDS):
        try:
            subprocess.run(
                [sys.executable, "-c", WRITER, DIR],
                timeout=0.12 + 0.01 * (i % 10),
                stdout=subprocess.DEVNULL,
                env=WRITER_ENV,
            )
        except subprocess.TimeoutExpired:
            killed += 1


class Busy:
    def __init__(self) -> None:
        self.x = 0


def busy(b: Busy) -> None:
    for _ in range(50):
        b.x += 1


# The writers must be killed while the ring is drained (a ring nobody drains
# fills up, and a producer that finds it full takes no slot): so they run
# from a thread of their own while explorations with a great many
# executions run, which drain the ring at every scheduling point.
killer = threading.Thread(target=kill_writers)
killer.start()
while killer.is_alive():
    frontrun.explore_dpor(
        Busy, [busy, busy, busy], lambda b: True, preemption_bound=None, stop_on_first=False, total_timeout=0.5
    )
killer.join()
# The ring's header (layout in ring/src/lib.rs): events handed out,
# events taken, events lost. For the failure message.
with open(os.environ["FRONTRUN_RING"], "rb") as f:
    header = f.read(256)
RING = [struct.unpack_from("<Q", header, offset)[0] for offset in (64, 128, 192)]

COUNTER = os.path.join(DIR, "counter")


def setup() -> str:
    fd = os.open(COUNTER, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, b"0")
    os.close(fd)
    return COUNTER


def increment(path: str) -> None:
    fd = os.open(path, os.O_RDWR)
    value = int(os.read(fd, 32))
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, str(value + 1).encode())
    os.close(fd)


def holds(path: str) -> bool:
    with open(path) as f:
        return f.read() == "2"


# A thread killed right after taking its slot, before the slot names its
# process, is given up on after 2 s of waiting (CLAIM_GIVE_UP_AFTER in
# ring/src/lib.rs), one such slot after the other: the ring must deliver
# again within a bound, so explore until the race is seen, for at most 60 s.
deadline = time.monotonic() + 60
while True:
    result = frontrun.explore_dpor(setup, [increment, increment], holds, preemption_bound=None, reproduce_on_failure=2)
    if result.native_events or time.monotonic() > deadline:
        break
print(
    "RESULT "
    + json.dumps(
        {
            "killed": killed,
            "ring": RING,
            "holds": result.property_holds,
            "native_events": result.native_events,
            "events_lost": result.events_lost,
            "inconclusive": result.inconclusive,
        }
    )
)
