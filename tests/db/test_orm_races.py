"""ORM code over a driver that waits by polling (SQLAlchemy + psycopg 3)."""

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


def test_an_orm_lost_update_through_psycopg3_is_found_and_leaves_no_session_behind(
    service: Callable[[str], Any],
) -> None:
    service("postgresql")
    env = dict(os.environ, LD_PRELOAD=frontrun.preload_path())
    env.pop("FRONTRUN_RING", None)
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("orm_lost_update.py")), uuid.uuid4().hex[:10]],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout + proc.stderr
    r = json.loads(lines[-1][len("RESULT ") :])
    assert r["verdict"] == "race", r
    assert r["inconclusive"] == []
    assert "UPDATE orm_acct_" in r["explanation"]
    assert r["idle_in_transaction"] == 0
