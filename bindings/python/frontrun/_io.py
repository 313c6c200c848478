"""Python-level I/O detection (``detect_io=True``).

Two workers that talk to the same server, or read and write the same file,
conflict even though they share no Python object. While an exploration runs,
this module wraps the socket methods, ``open``, ``os.open``, ``os.read`` and
``os.write`` so that, in a worker thread, each such call first takes a
scheduling step of its own that reports the resource to the engine: the DPOR
search can then run another worker's I/O before it.

When the exploration reads the events of the preload library, the socket and
``os`` wrappers report nothing: the library sees those calls at the libc
level, and for database connections it reports the rows and keys a request
touches, which a report of the whole peer would drown in conflicts. Sends
and receives still delimit exchanges (below). ``open`` is still reported
(the library does not hook ``open``; its reads and writes of the file carry
the same name).

Resources are named the way ``libfrontrun_io.so`` names them
(``socket:127.0.0.1:5432``, ``socket:[::1]:6379``, ``socket:unix:/path``,
``file:/abs/path``), so an operation seen by both layers is one resource.
Sends, ``sendall`` and opening a file for writing (modes with ``w``, ``a``,
``x`` or ``+``) are writes; receives and opening for reading are reads;
``connect`` is a read of the peer: a scheduling point that orders the
connection against other workers' traffic without conflicting with their
connects.

A server applies a request at a moment of its own choosing between the
send and the answer. If another worker could send its own request in that
gap, which one the server handled first would depend on timing, and a
schedule would not replay. So a send on a stream socket opens an exchange:
until the worker receives on that socket (or closes it), it keeps the turn,
and everything it does, instructions and I/O alike, joins the send's step.
A receive is reported as a read and is never a scheduling point of its own.

Threads that are not workers of a running exploration (a test's server
thread, the main thread) call straight through: one native call to learn
they are not workers, nothing named, nothing reported. The wrappers keep
the wrapped call's arguments, return value and exceptions.
"""

from __future__ import annotations

import builtins
import functools
import io
import os
import socket
import stat
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from frontrun import _engine

__all__ = ["address_name", "detection", "fd_name", "file_name", "socket_name"]

# 0: not a worker; 1: a worker; 2: a worker whose exploration reads the
# preload library's events.
_worker_kind = _engine.io_worker

#: Descriptors of the sockets whose traffic went through Python's socket
#: methods while detection was on, in any thread (``_unseen_io`` does not
#: count their traffic as native).
python_fds: set[int] = set()
# The socket (its name) whose answer the calling worker waits for.
_exchange = threading.local()
_MISSING = object()

_SOCKET_READS = ("recv", "recv_into", "recvfrom", "recvfrom_into", "recvmsg", "recvmsg_into")
_SOCKET_WRITES = ("send", "sendall", "sendmsg")
_OPEN_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC


# ---------------------------------------------------------------------------
# Naming resources (bytes: the engine key is computed from the exact bytes)
# ---------------------------------------------------------------------------


def file_name(path: Any, dir_fd: int | None = None) -> bytes | None:
    """``file:<absolute path, symlinks resolved>`` for what ``open(path)``
    opens, as the preload library names the descriptor once it is open; a
    path that does not exist yet is named too (the call may create it).
    None for what is not a regular file: devices, pipes, directories."""
    if isinstance(path, int) and not isinstance(path, bool):
        return fd_name(path)
    try:
        raw = os.fspath(path)
    except TypeError:
        return None
    if isinstance(raw, str):
        raw = os.fsencode(raw)
    if not isinstance(raw, bytes) or b"\0" in raw:
        return None
    if dir_fd is not None and not raw.startswith(b"/"):
        try:
            base = os.readlink(f"/proc/self/fd/{dir_fd}")
        except OSError:
            return None
        raw = os.path.join(os.fsencode(base), raw)
    try:
        st = os.stat(raw)
    except OSError:
        st = None  # about to be created, or the call fails anyway
    if st is not None and not stat.S_ISREG(st.st_mode):
        return None
    return b"file:" + os.path.realpath(raw)


def fd_name(fd: int) -> bytes | None:
    """The name of what descriptor ``fd`` refers to: a regular file or a
    connected socket; None for stdio, pipes, terminals and devices."""
    if fd < 3:
        return None
    try:
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode):
            return b"file:" + os.fsencode(os.readlink(f"/proc/self/fd/{fd}"))
        if stat.S_ISSOCK(st.st_mode):
            sock = socket.socket(fileno=fd)
            try:
                return socket_name(sock)
            finally:
                sock.detach()
    except (OSError, ValueError):
        return None
    return None


def socket_name(sock: socket.socket) -> bytes | None:
    """The name of a connected socket's peer (for the server end of a Unix
    socket, the path it listens on); None when it is not connected."""
    try:
        peer = sock.getpeername()
    except (OSError, ValueError):
        return None
    if sock.family == socket.AF_UNIX and peer in ("", b""):
        try:
            peer = sock.getsockname()
        except OSError:
            return None
    return address_name(sock.family, peer, sock.type)


def address_name(family: int, address: Any, type_: int = 0) -> bytes | None:
    """The name of the peer at ``address`` (an argument of ``connect`` or
    ``sendto``), resolving a host name as the socket call will."""
    try:
        if family == socket.AF_UNIX:
            path = address if isinstance(address, bytes) else os.fsencode(address)
            if not path:
                return None
            if path[:1] == b"\0":
                return b"socket:unix:@" + path[1:]
            return b"socket:unix:" + path.split(b"\0", 1)[0]
        if family in (socket.AF_INET, socket.AF_INET6):
            host, port = address[0], int(address[1])
            name = _engine.inet_socket_name(_numeric_host(family, host, port, type_), port)
            return name.encode() if name is not None else None
    except (OSError, TypeError, ValueError, IndexError, UnicodeError, OverflowError):
        return None
    return None


def _numeric_host(family: int, host: Any, port: int, type_: int) -> str:
    if isinstance(host, bytes):
        host = host.decode("idna")
    if host == "":
        return "0.0.0.0" if family == socket.AF_INET else "::"
    if host == "<broadcast>":
        return "255.255.255.255"
    if _engine.inet_socket_name(host, port) is not None:
        return host
    infos = socket.getaddrinfo(host, port, family, type_)
    return str(infos[0][4][0])


def _mode_writes(mode: Any) -> bool:
    return not isinstance(mode, str) or any(c in mode for c in "wax+")


# ---------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------


def _step(name: bytes | None, write: bool, own_step: bool = True) -> None:
    if name is not None:
        # The frame of the wrapper: the engine walks out to the user's code.
        _engine.io_step([(name, write)], sys._getframe(1), own_step)


def _send(
    sock: socket.socket, name: bytes | None, report: bool, real: Callable[..., Any], *args: Any, **kwargs: Any
) -> Any:
    if report:
        _step(name, True)
    if name is None or sock.type != socket.SOCK_STREAM:
        return real(sock, *args, **kwargs)
    _exchange.name = name
    _engine.io_hold(True)
    try:
        return real(sock, *args, **kwargs)
    except BaseException:
        # No answer comes to a request that was not sent.
        _end_exchange(name)
        raise


def _end_exchange(name: bytes | None) -> None:
    if name is not None and getattr(_exchange, "name", None) == name:
        _exchange.name = None
        _engine.io_hold(False)


def _receive_wrapper(real: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(real)
    def wrapper(self: socket.socket, *args: Any, **kwargs: Any) -> Any:
        python_fds.add(self.fileno())
        kind = _worker_kind()
        if not kind:
            return real(self, *args, **kwargs)
        name = socket_name(self)
        if kind == 1:
            _step(name, False, own_step=False)
        try:
            return real(self, *args, **kwargs)
        finally:
            _end_exchange(name)

    return wrapper


def _send_wrapper(real: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(real)
    def wrapper(self: socket.socket, *args: Any, **kwargs: Any) -> Any:
        python_fds.add(self.fileno())
        kind = _worker_kind()
        if not kind:
            return real(self, *args, **kwargs)
        return _send(self, socket_name(self), kind == 1, real, *args, **kwargs)

    return wrapper


def _sendto_wrapper(real: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(real)
    def sendto(self: socket.socket, *args: Any) -> Any:
        python_fds.add(self.fileno())
        kind = _worker_kind()
        if not kind:
            return real(self, *args)
        name = socket_name(self)
        if name is None and len(args) >= 2:
            name = address_name(self.family, args[-1], self.type)
        return _send(self, name, kind == 1, real, *args)

    return sendto


def _close_wrapper(real: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(real)
    def close(self: socket.socket) -> Any:
        if getattr(_exchange, "name", None) is None or not _worker_kind():
            return real(self)
        name = socket_name(self)
        try:
            return real(self)
        finally:
            _end_exchange(name)

    return close


def _connect_wrapper(real: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(real)
    def connect(self: socket.socket, address: Any, /) -> Any:
        if _worker_kind() == 1:
            _step(address_name(self.family, address, self.type), False)
        return real(self, address)

    return connect


def _open_wrapper(real: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(real)
    def open(file: Any, mode: Any = "r", *args: Any, **kwargs: Any) -> Any:
        if _worker_kind():
            _step(file_name(file), _mode_writes(mode))
        return real(file, mode, *args, **kwargs)

    return open


def _os_open_wrapper(real: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(real)
    def open(path: Any, flags: int, *args: Any, **kwargs: Any) -> Any:
        if _worker_kind() == 1:
            write = not isinstance(flags, int) or bool(flags & _OPEN_WRITE_FLAGS)
            _step(file_name(path, kwargs.get("dir_fd")), write)
        return real(path, flags, *args, **kwargs)

    return open


def _fd_wrapper(real: Callable[..., Any], write: bool) -> Callable[..., Any]:
    @functools.wraps(real)
    def wrapper(fd: Any, *args: Any) -> Any:
        if _worker_kind() == 1 and isinstance(fd, int):
            name = fd_name(fd)
            _step(name, write, own_step=write or not (name or b"").startswith(b"socket:"))
        return real(fd, *args)

    return wrapper


# ---------------------------------------------------------------------------
# Installing the wrappers
# ---------------------------------------------------------------------------


# The wrappers in place, counted: explorations running at the same time
# share one installation, removed when the last one ends.
_lock = threading.Lock()
_users = 0
# (namespace, attribute, what was there before or _MISSING, wrapper)
_installed: list[tuple[Any, str, Any, Any]] = []


def _plan() -> list[tuple[Any, str, Any]]:
    cls = socket.socket
    plan: list[tuple[Any, str, Any]] = []
    for name in _SOCKET_READS + _SOCKET_WRITES:
        real = getattr(cls, name, None)
        if real is not None:
            wrap = _send_wrapper if name in _SOCKET_WRITES else _receive_wrapper
            plan.append((cls, name, wrap(real)))
    plan.append((cls, "close", _close_wrapper(cls.close)))
    plan.append((cls, "sendto", _sendto_wrapper(cls.sendto)))
    plan.append((cls, "connect", _connect_wrapper(cls.connect)))
    plan.append((cls, "connect_ex", _connect_wrapper(cls.connect_ex)))
    wrapped_open = _open_wrapper(builtins.open)
    plan.append((builtins, "open", wrapped_open))
    if io.open is builtins.open:
        plan.append((io, "open", wrapped_open))
    if sys.version_info < (3, 11):
        # Python 3.10's pathlib opens files through a copy of io.open taken
        # at import time (3.11 dropped it; pathlib is not imported there).
        import pathlib

        accessor = getattr(pathlib, "_NormalAccessor", None)
        if isinstance(accessor, type) and accessor.__dict__.get("open") is builtins.open:
            plan.append((accessor, "open", staticmethod(wrapped_open)))
    plan.append((os, "open", _os_open_wrapper(os.open)))
    plan.append((os, "read", _fd_wrapper(os.read, False)))
    plan.append((os, "write", _fd_wrapper(os.write, True)))
    return plan


def install() -> None:
    global _users
    with _lock:
        _users += 1
        if _users > 1:
            return
        for owner, name, wrapper in _plan():
            before = owner.__dict__.get(name, _MISSING) if isinstance(owner, type) else getattr(owner, name)
            setattr(owner, name, wrapper)
            _installed.append((owner, name, before, wrapper))


def uninstall() -> None:
    global _users
    with _lock:
        if _users == 0:
            return
        _users -= 1
        if _users:
            return
        for owner, name, before, wrapper in reversed(_installed):
            current = owner.__dict__.get(name) if isinstance(owner, type) else getattr(owner, name, None)
            if current is not wrapper:
                # Someone patched over us meanwhile; theirs stays.
                continue
            if before is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, before)
        _installed.clear()


@contextmanager
def detection(enabled: bool) -> Iterator[None]:
    """The wrappers in place for the duration of the block when ``enabled``."""
    if not enabled:
        yield
        return
    install()
    try:
        yield
    finally:
        uninstall()
