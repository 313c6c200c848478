"""Small servers on localhost for the I/O detection tests.

They run in threads of their own, which are not frontrun workers: the I/O
wrappers must leave them alone, so they serve the workers during an
exploration exactly as they would without it.
"""

from __future__ import annotations

import http.client
import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# The preload library is not loaded under plain pytest; the warning about it
# has its own test in tests/explore.
IGNORE_PRELOAD_WARNING = "ignore:detect_io=True but libfrontrun_io.so:RuntimeWarning"


class KeyValueServer(http.server.ThreadingHTTPServer):
    """GET /key answers the value (0 when unset); PUT /key with a body sets it."""

    daemon_threads = True

    def __init__(self, host: str = "127.0.0.1") -> None:
        super().__init__((host, 0), _Handler)
        self.store: dict[str, int] = {}
        self.store_lock = threading.Lock()

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class _Handler(http.server.BaseHTTPRequestHandler):
    server: KeyValueServer

    def do_GET(self) -> None:
        with self.server.store_lock:
            value = self.server.store.get(self.path.lstrip("/"), 0)
        self._answer(str(value).encode())

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with self.server.store_lock:
            self.server.store[self.path.lstrip("/")] = int(body)
        self._answer(b"OK")

    def _answer(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def running(server: KeyValueServer) -> Iterator[KeyValueServer]:
    thread = threading.Thread(target=server.serve_forever, name="kv-server", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def http_get(port: int, key: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", f"/{key}")
        return int(conn.getresponse().read())
    finally:
        conn.close()


def http_put(port: int, key: str, value: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("PUT", f"/{key}", body=str(value).encode())
        conn.getresponse().read()
    finally:
        conn.close()
