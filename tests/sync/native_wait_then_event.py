"""A worker waits in a C-level recv() while the other waits on an Event
that the first sets once its data arrives from outside the exploration.

Run under the preload library. Prints one line ``RESULT <json>``.
"""

from __future__ import annotations

import json
import socket
import threading
from typing import Any

import frontrun

LISTENER = socket.create_server(("127.0.0.1", 0))
PORT = LISTENER.getsockname()[1]
OPEN: list[socket.socket] = []
TIMERS: list[threading.Timer] = []


class Pair:
    def __init__(self) -> None:
        self.client = socket.create_connection(("127.0.0.1", PORT))
        self.server, _ = LISTENER.accept()
        OPEN.extend([self.client, self.server])
        self.ready = threading.Event()
        self.got = b""
        self.seen = b""
        # An ordinary thread (not explored) feeds the reader a little later.
        timer = threading.Timer(0.3, self.server.sendall, [b"x"])
        TIMERS.append(timer)
        timer.start()


def reader(p: Pair) -> None:
    p.got = p.client.recv(1)
    p.ready.set()


def waiter(p: Pair) -> None:
    p.ready.wait()
    p.seen = p.got


result = frontrun.explore_dpor(
    Pair,
    [reader, waiter],
    lambda p: p.seen == b"x",
    preemption_bound=None,
    stop_on_first=False,
    deadlock_timeout=5.0,
    timeout_per_run=10.0,
    reproduce_on_failure=0,
)
out: dict[str, Any] = {
    "holds": result.property_holds,
    "executions": result.num_explored,
    "native_waits": result.native_waits,
    "deadlock": None if result.deadlock is None else list(result.deadlock),
    "inconclusive": result.inconclusive,
    "explanation": result.explanation,
}
for t in TIMERS:
    t.join(5)
for s in OPEN:
    s.close()
LISTENER.close()
print("RESULT " + json.dumps(out), flush=True)
