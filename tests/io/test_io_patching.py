"""The I/O wrappers: in place only during an exploration, only in worker
threads, and invisible to the program (results, exceptions, subclasses)."""

from __future__ import annotations

import builtins
import inspect
import io
import os
import pathlib
import socket
import threading
from pathlib import Path
from typing import Any

import pytest
from _io_servers import IGNORE_PRELOAD_WARNING
from frontrun import explore_dpor, record_accesses

pytestmark = pytest.mark.filterwarnings(IGNORE_PRELOAD_WARNING)

ORIGINAL_OPEN = builtins.open
ORIGINAL_OS = (os.open, os.read, os.write)
ORIGINAL_CLOSE = socket.socket.__dict__["close"]


def test_wrappers_are_removed_when_the_exploration_ends(tmp_path: Path) -> None:
    seen_during: list[Any] = []

    def work(_: object) -> None:
        seen_during.append(builtins.open)

    explore_dpor(lambda: None, [work], lambda _: True)
    assert seen_during and seen_during[0] is not ORIGINAL_OPEN
    assert builtins.open is ORIGINAL_OPEN
    assert io.open is ORIGINAL_OPEN
    assert (os.open, os.read, os.write) == ORIGINAL_OS
    for name in ("send", "sendall", "sendto", "recv", "recv_into", "recvfrom", "connect", "connect_ex"):
        assert name not in socket.socket.__dict__, name
    assert socket.socket.__dict__["close"] is ORIGINAL_CLOSE
    accessor = getattr(pathlib, "_NormalAccessor", None)  # Python 3.10
    if accessor is not None:
        assert accessor.__dict__["open"] is ORIGINAL_OPEN


def test_wrappers_keep_names_and_signatures() -> None:
    seen: dict[str, Any] = {}

    def work(_: object) -> None:
        seen["open"] = builtins.open
        seen["send"] = socket.socket.send

    explore_dpor(lambda: None, [work], lambda _: True)
    assert seen["open"].__name__ == "open"
    assert inspect.signature(seen["open"]) == inspect.signature(ORIGINAL_OPEN)
    assert seen["send"].__name__ == "send"


def test_detect_io_false_leaves_everything_alone() -> None:
    seen: list[Any] = []
    explore_dpor(lambda: None, [lambda _: seen.append(builtins.open)], lambda _: True, detect_io=False)
    assert seen == [ORIGINAL_OPEN]


def test_threads_the_workers_start_have_their_io_reported_as_theirs(tmp_path: Path) -> None:
    path = tmp_path / "side-file"

    def work(_: object) -> None:
        side_thread = threading.Thread(target=lambda: path.write_text("from a side thread"))
        side_thread.start()
        side_thread.join()

    seen = record_accesses(lambda: None, [work])
    files = {(thread, loc) for thread, _, loc, _ in seen if loc.startswith(("file:", "socket:"))}
    assert files == {(1, f"file:{path}")}, seen
    assert path.read_text() == "from a side thread"


def test_exceptions_of_the_wrapped_calls_reach_the_program(tmp_path: Path) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    caught: list[type[BaseException]] = []

    def work(_: object) -> None:
        try:
            open(tmp_path / "missing")
        except FileNotFoundError as e:
            caught.append(type(e))
        with socket.socket() as s:
            try:
                s.connect(("127.0.0.1", port))
            except ConnectionRefusedError as e:
                caught.append(type(e))

    result = explore_dpor(lambda: None, [work], lambda _: True)
    assert result.property_holds
    assert caught == [FileNotFoundError, ConnectionRefusedError]

    def unhandled(_: object) -> None:
        open(tmp_path / "missing")

    result = explore_dpor(lambda: None, [unhandled], lambda _: True, reproduce_on_failure=0)
    assert isinstance(result.errors[0], FileNotFoundError)


def test_udp_and_subclasses_and_makefile_work_and_are_named() -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def serve() -> None:
        data, addr = server.recvfrom(100)
        server.sendto(data.upper(), addr)

    side_thread = threading.Thread(target=serve, daemon=True)
    side_thread.start()
    sends: list[str] = []

    class Loud(socket.socket):
        def sendto(self, *args: Any) -> Any:
            sends.append("subclass")
            return super().sendto(*args)

    answers: list[Any] = []

    def work(_: object) -> None:
        with Loud(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(10)
            answers.append(s.sendto(b"ping", ("127.0.0.1", port)))
            answers.append(s.recvfrom(100))
        a, b = socket.socketpair()
        with a, b, a.makefile("wb") as w, b.makefile("rb") as r:
            w.write(b"line\n")
            w.flush()
            answers.append(r.readline())

    seen = record_accesses(lambda: None, [work])
    side_thread.join(10)
    server.close()
    assert answers == [4, (b"PING", ("127.0.0.1", port)), b"line\n"]
    assert sends == ["subclass"]
    # The unconnected UDP socket is named by the destination of sendto; its
    # receive has no peer to name. A socketpair has no name at all.
    assert [(kind, loc) for _, kind, loc, _ in seen if loc.startswith("socket:")] == [
        ("write", f"socket:127.0.0.1:{port}")
    ]


class Counter:
    def __init__(self) -> None:
        self.value = 0


def increment(c: Counter) -> None:
    current = c.value
    c.value = current + 1


class Cells:
    def __init__(self) -> None:
        self.x = 0
        self.items: list[int] = []


def writer(s: Cells) -> None:
    s.x = 1
    s.items.append(1)


def reader(s: Cells) -> None:
    _ = s.x
    _ = len(s.items)


@pytest.mark.parametrize(
    ("setup", "threads"),
    [(Counter, [increment, increment]), (Cells, [writer, reader, reader]), (Cells, [writer, writer])],
    ids=["lost-update", "writer-readers", "two-writers"],
)
def test_programs_without_io_explore_as_many_executions_with_detect_io(setup: Any, threads: list[Any]) -> None:
    counts = [
        explore_dpor(
            setup, threads, lambda _: True, preemption_bound=None, detect_io=detect_io, reproduce_on_failure=0
        ).num_explored
        for detect_io in (False, True)
    ]
    assert counts[0] == counts[1]
    assert counts[0] > 1


def test_replay_line_carries_detect_io_false() -> None:
    args = (Counter, [increment, increment], lambda c: c.value == 2)
    without = explore_dpor(*args, detect_io=False, reproduce_on_failure=0)
    assert without.explanation is not None
    assert "frontrun.replay(" in without.explanation
    assert ", invariant, detect_io=False)" in without.explanation
    with_io = explore_dpor(*args, reproduce_on_failure=0)
    assert with_io.explanation is not None
    assert ", invariant)" in with_io.explanation
