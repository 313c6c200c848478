"""A private MariaDB server with TLS on, for the tests of statements sent
through TLS to MariaDB (the local server has TLS off, and turning it on
would change it for everything else on the machine).

The server gets a fresh data directory, a self-signed certificate made
with ``openssl``, and a free port on 127.0.0.1; it is stopped when the
test session ends. It needs Debian's ``mariadb-server`` programs
(``mariadb-install-db``, ``mariadbd``), which the machine's MariaDB
service already brings.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PROGRAMS = ("openssl", "mariadb-install-db", "mariadbd")


def missing_programs() -> list[str]:
    found = {p: shutil.which(p) or shutil.which(p, path="/usr/sbin:/usr/bin") for p in PROGRAMS}
    return [p for p, where in found.items() if where is None]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(*args: str, cwd: Path) -> None:
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")


@contextmanager
def server() -> Iterator[tuple[int, Path]]:
    """Start the server; yields (port, certificate file)."""
    where = Path(tempfile.mkdtemp(prefix="frontrun-mariadb-tls-"))
    proc = None
    try:
        cert, key = where / "cert.pem", where / "key.pem"
        _run(
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert),
            cwd=where,
        )  # fmt: skip
        mariadbd = shutil.which("mariadbd") or shutil.which("mariadbd", path="/usr/sbin:/usr/bin")
        assert mariadbd is not None
        user = ["--user=root"] if os.geteuid() == 0 else []
        _run(
            "mariadb-install-db", "--no-defaults", *user, f"--datadir={where / 'data'}",
            "--auth-root-authentication-method=normal", "--skip-test-db",
            cwd=where,
        )  # fmt: skip
        port = _free_port()
        with open(where / "server.log", "w") as log:
            proc = subprocess.Popen(
                [
                    mariadbd, "--no-defaults", *user, f"--datadir={where / 'data'}", f"--port={port}",
                    "--bind-address=127.0.0.1", f"--socket={where / 'sock'}", f"--pid-file={where / 'pid'}",
                    f"--ssl-cert={cert}", f"--ssl-key={key}", "--skip-name-resolve",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"mariadbd exited ({proc.returncode}):\n{(where / 'server.log').read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("mariadbd did not listen within 60 s") from None
                time.sleep(0.05)
        import pymysql

        conn = pymysql.connect(host="127.0.0.1", port=port, user="root", password="", autocommit=True)
        with conn.cursor() as cur:
            cur.execute("CREATE DATABASE IF NOT EXISTS test")
            cur.execute("SHOW VARIABLES LIKE 'have_ssl'")
            assert cur.fetchone()[1] == "YES", "the private server has no TLS"
        conn.close()
        yield port, cert
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(where, ignore_errors=True)
