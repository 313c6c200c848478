"""A worker blocked in a C-level recv() until the other worker sends.

    python blocked_recv.py fed|starved

Each execution gets a fresh loopback connection: worker 0 reads one byte
from its end, worker 1 writes that byte into the other end (``fed``) or
does nothing native (``starved``: nobody ends the wait). Run under the
preload library. Prints one line ``RESULT <json>``.
"""

from __future__ import annotations

import json
import socket
import sys
from typing import Any

import frontrun

MODE = sys.argv[1]
LISTENER = socket.create_server(("127.0.0.1", 0))
PORT = LISTENER.getsockname()[1]
OPEN: list[socket.socket] = []


class Pair:
    def __init__(self) -> None:
        self.client = socket.create_connection(("127.0.0.1", PORT))
        self.server, _ = LISTENER.accept()
        OPEN.extend([self.client, self.server])
        self.got = b""


def reader(p: Pair) -> None:
    p.got = p.client.recv(1)


def writer(p: Pair) -> None:
    if MODE == "fed":
        p.server.sendall(b"x")


result = frontrun.explore_dpor(
    Pair, [reader, writer], lambda p: p.got == b"x", preemption_bound=None, deadlock_timeout=2.0, timeout_per_run=10.0
)
out: dict[str, Any] = {
    "holds": result.property_holds,
    "executions": result.num_explored,
    "native_waits": result.native_waits,
    "inconclusive": result.inconclusive,
}
# Let a reader left waiting by an abandoned execution finish.
for s in OPEN:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    s.close()
LISTENER.close()
print("RESULT " + json.dumps(out), flush=True)
