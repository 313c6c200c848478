"""Cooperative waits next to waits in native code (under the preload
library): a thread parked on an Event while the only other thread waits in
recv() for data from outside is not a deadlock; the native wait ends and
wakes it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import frontrun


def run_script(name: str) -> dict[str, Any]:
    env = dict(os.environ, LD_PRELOAD=frontrun.preload_path())
    env.pop("FRONTRUN_RING", None)
    script = Path(__file__).with_name(name)
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout + proc.stderr
    result: dict[str, Any] = json.loads(lines[-1][len("RESULT ") :])
    return result


def test_an_event_waiter_is_not_deadlocked_while_the_setter_waits_in_native_code() -> None:
    r = run_script("native_wait_then_event.py")
    assert r["deadlock"] is None, r["explanation"]
    assert r["inconclusive"] == []
    assert r["holds"], r["explanation"]
    assert r["native_waits"] >= 1
