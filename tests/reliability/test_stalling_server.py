"""A database behind a server that stops answering: `total_timeout` and
`timeout_per_run` bound the whole call, `setup()` included, and the result
says the search was cut instead of passing.

The stall is a TCP proxy this test starts on 127.0.0.1 in front of the
local PostgreSQL: it forwards bytes until told to stall, then accepts
connections and never answers them, as a wedged server or a dropped
network path does. psycopg2 has no connect timeout by default, so a
`setup()` that connects waits inside libpq, in C.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import frontrun
import pytest

psycopg2 = pytest.importorskip("psycopg2")


class StallingProxy:
    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.stalled = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        #: Every socket the proxy opened or accepted, closed by ``close``.
        self.sockets: list[socket.socket] = []
        self._closing = False
        self._thread = threading.Thread(target=self._accept, name="stalling-proxy", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._closing:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.sockets.append(client)
            if self.stalled.is_set() or self._closing:
                continue  # accepted, never answered
            server = socket.create_connection(self.upstream)
            self.sockets.append(server)
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self._closing = True
        # Closing a listening socket does not wake a thread in accept(): a
        # last connection does.
        socket.create_connection(("127.0.0.1", self.port)).close()
        self._thread.join(5)
        self.listener.close()
        for s in self.sockets:
            s.close()


@pytest.fixture
def proxy(service: object) -> Iterator[StallingProxy]:
    host, port = service("postgresql")  # type: ignore[operator]
    p = StallingProxy((host, port))
    try:
        yield p
    finally:
        p.close()


class Counter:
    def __init__(self, dsn: str) -> None:
        # The state a test resets through its database before each execution.
        conn = psycopg2.connect(dsn)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 0")
                (self.value,) = cur.fetchone()
        finally:
            conn.close()


def _increment(c: Counter) -> None:
    current = c.value
    c.value = current + 1


def test_total_timeout_bounds_a_setup_that_waits_on_a_stalled_server(proxy: StallingProxy) -> None:
    dsn = f"host=127.0.0.1 port={proxy.port} dbname=test user=postgres"
    executions = []

    def setup() -> Counter:
        executions.append(1)
        if len(executions) == 2:
            proxy.stalled.set()  # the server stops answering from the second execution
        return Counter(dsn)

    start = time.monotonic()
    result = frontrun.explore_dpor(
        setup,
        [_increment, _increment],
        lambda c: True,  # the race is never reported: only the bound is under test
        detect_io=False,
        timeout_per_run=60.0,
        total_timeout=2.0,
        preemption_bound=None,
    )
    elapsed = time.monotonic() - start
    assert elapsed < 6.0, f"total_timeout=2.0 took {elapsed:.1f}s"
    assert result.verdict == "inconclusive" and result.property_holds is None and not result.exhausted
    [(number, why)] = result.inconclusive
    assert number == 2
    assert "setup() did not return within" in why and "psycopg2" in why
    with pytest.raises(frontrun.InconclusiveError):
        result.assert_holds()


def test_timeout_per_run_bounds_it_without_a_total_timeout(proxy: StallingProxy) -> None:
    dsn = f"host=127.0.0.1 port={proxy.port} dbname=test user=postgres"
    proxy.stalled.set()
    start = time.monotonic()
    result = frontrun.explore_dpor(
        lambda: Counter(dsn), [_increment, _increment], lambda c: True, detect_io=False, timeout_per_run=1.0
    )
    assert time.monotonic() - start < 5.0
    assert result.verdict == "inconclusive"
    assert "setup() did not return within 1.0s" in result.inconclusive[0][1]
