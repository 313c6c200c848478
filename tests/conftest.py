"""Shared fixtures for the cross-component test suite.

Tests that need a local server ask for it through ``require_service``. On a
developer machine without the server they skip with the reason shown; when
``FRONTRUN_REQUIRE_SERVICES=1`` (as in CI) a missing server is a failure.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable

import pytest

SERVICES = {
    "postgresql": ("127.0.0.1", 5432),
    "redis": ("127.0.0.1", 6379),
    "mariadb": ("127.0.0.1", 3306),
}


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2.0):
            return True
    except OSError:
        return False


def require_service(name: str) -> tuple[str, int]:
    """Return ``(host, port)`` of a local server, or skip/fail if it is down."""
    host, port = SERVICES[name]
    if not _reachable(host, port):
        message = f"{name} is not reachable on {host}:{port}"
        if os.environ.get("FRONTRUN_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{message} (FRONTRUN_REQUIRE_SERVICES=1)")
        pytest.skip(message)
    return host, port


@pytest.fixture
def postgresql_dsn() -> str:
    host, port = require_service("postgresql")
    return f"host={host} port={port} dbname=test user=postgres"


@pytest.fixture
def service() -> Callable[[str], tuple[str, int]]:
    """``require_service`` for tests in other directories (conftest modules
    are not importable by name from there)."""
    return require_service


@pytest.fixture(autouse=True)
def _full_dpor_never_sleep_set_blocked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every program in this suite is deterministic, so with full DPOR
    (``preemption_bound=None``) no execution may end sleep-set blocked: that
    would mean a replayed prefix produced other events, and the search would
    have skipped interleavings. Checked on every exploration a test runs in
    this process (explorations in child processes check it themselves)."""
    from frontrun import _stats

    record = _stats.record

    def checked(result: object) -> None:
        record(result)
        if getattr(result, "preemption_bound", 0) is None:
            blocked = [why for _, why in getattr(result, "inconclusive", []) if "sleep-set blocked" in why]
            if blocked:
                pytest.fail(f"full DPOR saw a sleep-set blocked execution: {blocked[0]}")

    monkeypatch.setattr(_stats, "record", checked)
