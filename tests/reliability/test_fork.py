"""A worker that forks: the child leaves the scheduler and runs freely, the
parent's exploration goes on, and nothing is left running."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("fork_in_worker.py")


def run(mode: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "FRONTRUN_RING")}
    # The whole interpreter must exit by itself: a child left blocked in
    # the turn-taking kept multiprocessing's exit handler waiting for good.
    proc = subprocess.run([sys.executable, str(SCRIPT), mode], env=env, capture_output=True, text=True, timeout=200)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout + proc.stderr
    result: dict = json.loads(lines[-1][len("RESULT ") :])
    return result


@pytest.mark.parametrize("mode", ["os_fork", "returning_child", "multiprocessing"])
def test_the_child_of_a_forking_worker_runs_freely_in_every_execution(mode: str) -> None:
    r = run(mode)
    # Every execution's child ended by itself, with its own exit status
    # (a child blocked in the turn-taking is recorded as "hung").
    assert r["holds"], r["explanation"]
    assert r["failures"] == 0 and r["inconclusive"] == []
    # The forked child's accesses are not the parent's: the parent's own
    # conflicts on State.x are explored as usual.
    assert r["executions"] > 1


def test_a_forked_child_can_run_an_exploration_of_its_own() -> None:
    r = run("exploring_child")
    assert r["holds"], r["explanation"]
    assert r["failures"] == 0 and r["inconclusive"] == []
