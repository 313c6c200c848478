"""Database scenarios run in a subprocess under the preload library.

The pytest process itself is not preloaded, so each scenario of
``scenarios.py`` runs in a child with ``LD_PRELOAD`` set to the library the
package ships. A server that is down fails the test in CI
(``FRONTRUN_REQUIRE_SERVICES=1``) through the ``service`` fixture.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import frontrun
import mariadb_tls as _mariadb_tls
import pytest

SCENARIOS = Path(__file__).with_name("scenarios.py")
ASYNC_SCENARIOS = Path(__file__).with_name("async_scenarios.py")
SERVICE_OF = {
    "psycopg2": "postgresql",
    "psycopg": "postgresql",
    "mysqlclient": "mariadb",
    "pymysql": "mariadb",
    "redis": "redis",
    "opaque": "postgresql",
    "sqlalchemy": "postgresql",
    "asyncpg": "postgresql",
    "aiomysql": "mariadb",
    "asyncmy": "mariadb",
}
#: Every scenario must finish well within this on the test machine.
BUDGET_SECONDS = 30.0


def run_scenario(
    name: str, preload: bool = True, script: Path = SCENARIOS, runtime_hooks: bool = True, checked: bool = True
) -> dict[str, Any]:
    """Run one scenario of ``script`` in a child; ``preload=False`` starts
    it without ``LD_PRELOAD``, so the explorer installs the hooks at run
    time, unless ``runtime_hooks=False`` refuses them too (no native events
    at all: the result is returned unchecked). ``checked=False`` returns
    the result without asserting that everything was seen and checked."""
    env = dict(os.environ, LD_PRELOAD=frontrun.preload_path())
    if not preload:
        del env["LD_PRELOAD"]
    env.pop("FRONTRUN_RING", None)
    env.pop("FRONTRUN_RUNTIME_HOOKS", None)
    if not runtime_hooks:
        env["FRONTRUN_RUNTIME_HOOKS"] = "0"
    tag = uuid.uuid4().hex[:10]
    proc = subprocess.run(
        [sys.executable, str(script), name, tag],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, f"scenario {name} failed:\n{proc.stdout}\n{proc.stderr}"
    result: dict[str, Any] = json.loads(lines[-1][len("RESULT ") :])
    if not checked or (not preload and not runtime_hooks):
        result["stderr"] = proc.stderr
        return result
    assert result["native_events"] > 0, "the preload library reported nothing: was it loaded?"
    assert result["events_lost"] == 0
    assert result["inconclusive"] == [], result["inconclusive"]
    assert result["seconds"] < BUDGET_SECONDS, f"{name} took {result['seconds']}s"
    return result


@pytest.fixture
def scenario(service: Callable[[str], Any]) -> Callable[[str], dict[str, Any]]:
    def run(name: str, preload: bool = True, runtime_hooks: bool = True) -> dict[str, Any]:
        service(SERVICE_OF[name.partition(":")[0].partition("+")[0]])
        return run_scenario(name, preload, runtime_hooks=runtime_hooks)

    return run


@pytest.fixture
def async_scenario(service: Callable[[str], Any]) -> Callable[[str], dict[str, Any]]:
    """A scenario of ``async_scenarios.py`` (``explore_async``)."""

    def run(name: str, checked: bool = True) -> dict[str, Any]:
        service(SERVICE_OF[name.partition(":")[0]])
        return run_scenario(name, script=ASYNC_SCENARIOS, checked=checked)

    return run


@pytest.fixture(scope="session")
def mariadb_tls() -> Iterator[int]:
    """A private MariaDB with TLS on (``mariadb_tls.py``) for the session;
    the scenarios reach it through ``FRONTRUN_TEST_MARIADB_TLS_PORT``."""
    missing = _mariadb_tls.missing_programs()
    if missing:
        message = f"a private MariaDB with TLS needs {', '.join(missing)}"
        if os.environ.get("FRONTRUN_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{message} (FRONTRUN_REQUIRE_SERVICES=1)")
        pytest.skip(message)
    with _mariadb_tls.server() as (port, cert):
        # Its port is not MySQL's own, so the library is told what it
        # speaks, as a user of such a server would tell it.
        added = {
            "FRONTRUN_TEST_MARIADB_TLS_PORT": str(port),
            "FRONTRUN_TEST_MARIADB_TLS_CA": str(cert),
            "FRONTRUN_PROTOCOLS": f"{port}=mysql",
        }
        before = {k: os.environ.get(k) for k in added}
        os.environ.update(added)
        try:
            yield port
        finally:
            for k, v in before.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
