"""Native socket traffic an exploration could not see.

When the preload library is neither preloaded nor installable at run time
(``FRONTRUN_RUNTIME_HOOKS=0``, an unsupported platform, a failed
``dlopen``), native I/O such as libpq's is invisible, and a lost update
through it would pass. So around the workers of each execution the TCP
sockets of the process are read: the kernel counts each one's bytes sent
and received (``TCP_INFO``). A socket whose counts moved while the workers
ran, that did not go through Python's socket methods (those are seen at
the Python level), carried traffic nobody recorded, and the execution is
reported as not checked.

Sockets opened and closed within one execution, and Unix-domain sockets
(the kernel keeps no byte counts for them), escape this check
(docs/limits.md).
"""

from __future__ import annotations

import os
import socket
import struct

from frontrun import _io

# struct tcp_info (linux/tcp.h): tcpi_bytes_acked and tcpi_bytes_received
# are the u64 fields at offsets 120 and 128 (Linux 4.1 and later).
_TCP_INFO_SIZE = 136
_BYTES_AT = 120


def _tcp_sockets() -> dict[int, tuple[int, int, str]]:
    """Each TCP socket of the process: descriptor -> (bytes acked, bytes
    received, peer)."""
    out: dict[int, tuple[int, int, str]] = {}
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return out
    for name in names:
        try:
            fd = int(name)
            if not os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                continue
            dup = os.dup(fd)
        except (OSError, ValueError):
            continue
        try:
            sock = socket.socket(fileno=dup)
        except OSError:
            os.close(dup)
            continue
        with sock:
            if sock.family not in (socket.AF_INET, socket.AF_INET6) or sock.type != socket.SOCK_STREAM:
                continue
            try:
                info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_SIZE)
                peer = sock.getpeername()
            except OSError:
                continue
            if len(info) < _TCP_INFO_SIZE:
                continue
            acked, received = struct.unpack_from("=QQ", info, _BYTES_AT)
            out[fd] = (acked, received, f"{peer[0]}:{peer[1]}")
    return out


class Watch:
    """Reads the TCP sockets before and after the workers of an execution;
    ``why`` is set for ``reason`` (why native events are not seen)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        self._before: dict[int, tuple[int, int, str]] = {}

    def before(self) -> None:
        _io.python_fds.clear()
        self._before = _tcp_sockets()

    def after(self) -> str | None:
        """Why the execution is not checked, or None when no native socket
        traffic went unseen."""
        moved = []
        for fd, (acked, received, peer) in _tcp_sockets().items():
            if fd in _io.python_fds:
                continue
            was = self._before.get(fd)
            if was is None or was[2] != peer:
                was = (0, 0, peer)
            if (acked, received) != was[:2]:
                moved.append(peer)
        if not moved:
            return None
        peers = ", ".join(sorted(set(moved)))
        return (
            f"the workers did socket I/O from native code (to {peers}) that frontrun could not see: "
            f"native events are not available ({self.reason}); run under `frontrun pytest` "
            "(or with LD_PRELOAD set to frontrun's library) to check it"
        )
