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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import frontrun
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
}
#: Every scenario must finish well within this on the test machine.
BUDGET_SECONDS = 30.0


def run_scenario(name: str, preload: bool = True, script: Path = SCENARIOS) -> dict[str, Any]:
    """Run one scenario of ``script`` in a child; ``preload=False`` starts
    it without ``LD_PRELOAD``, so the explorer installs the hooks at run
    time."""
    env = dict(os.environ, LD_PRELOAD=frontrun.preload_path())
    if not preload:
        del env["LD_PRELOAD"]
    env.pop("FRONTRUN_RING", None)
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
    assert result["native_events"] > 0, "the preload library reported nothing: was it loaded?"
    assert result["events_lost"] == 0
    assert result["inconclusive"] == [], result["inconclusive"]
    assert result["seconds"] < BUDGET_SECONDS, f"{name} took {result['seconds']}s"
    return result


@pytest.fixture
def scenario(service: Callable[[str], Any]) -> Callable[[str], dict[str, Any]]:
    def run(name: str, preload: bool = True) -> dict[str, Any]:
        service(SERVICE_OF[name.partition(":")[0].partition("+")[0]])
        return run_scenario(name, preload)

    return run


@pytest.fixture
def async_scenario(service: Callable[[str], Any]) -> Callable[[str], dict[str, Any]]:
    """A scenario of ``async_scenarios.py`` (``explore_async``)."""

    def run(name: str) -> dict[str, Any]:
        service(SERVICE_OF[name.partition(":")[0]])
        return run_scenario(name, script=ASYNC_SCENARIOS)

    return run
