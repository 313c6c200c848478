"""Processes killed while writing into the ring do not stop it: later
explorations still get their native events."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import frontrun


def test_an_exploration_after_sigkilled_four_thread_children_still_sees_native_events() -> None:
    env = dict(os.environ, LD_PRELOAD=frontrun.preload_path())
    env.pop("FRONTRUN_RING", None)
    script = Path(__file__).with_name("killed_children.py")
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=240)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout + proc.stderr
    r = json.loads(lines[-1][len("RESULT ") :])
    assert r["killed"] == 30, r
    assert r["inconclusive"] == [], r
    assert r["native_events"] > 0, r
    assert not r["holds"], r
