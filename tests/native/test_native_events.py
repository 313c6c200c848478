"""Events of libfrontrun_io.so drained into the exploration: C-level reads
and writes join the step of the worker that made them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import frontrun

SCRIPT = Path(__file__).with_name("file_counter.py")


def run(mode: str, *, preload: bool, detect_io: bool = True, runtime_hooks: bool = False) -> dict[str, Any]:
    """Run the file counter in a child. Without ``preload`` the library is
    absent altogether unless ``runtime_hooks`` lets the explorer install
    its hooks at run time."""
    env = dict(os.environ)
    env.pop("FRONTRUN_RING", None)
    env.pop("FRONTRUN_RUNTIME_HOOKS", None)
    if preload:
        env["LD_PRELOAD"] = frontrun.preload_path()
    else:
        env.pop("LD_PRELOAD", None)
        if not runtime_hooks:
            env["FRONTRUN_RUNTIME_HOOKS"] = "0"
    args = [sys.executable, str(SCRIPT), mode, *([] if detect_io else ["no-detect-io"])]
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout + proc.stderr
    result: dict[str, Any] = json.loads(lines[-1][len("RESULT ") :])
    assert result["inconclusive"] == []
    assert result["events_lost"] == 0
    return result


def test_file_counter_updated_through_os_calls_loses_an_update_under_the_library() -> None:
    r = run("same", preload=True)
    assert not r["holds"]
    assert r["native_events"] > 0
    assert r["reproduced"] == [10, 10]
    text = r["explanation"]
    assert "os.read(fd, 32)" in text and "os.write(fd" in text
    assert "lost update on file:" in text and text.count("[read file:") == 2


def test_the_native_events_of_a_thread_a_worker_starts_are_its_own() -> None:
    r = run("started", preload=True)
    assert not r["holds"]
    assert r["native_events"] > 0
    assert r["reproduced"] == [10, 10]
    text = r["explanation"]
    assert "2 = increment.<locals>.work (started by thread 0 at file_counter.py:" in text, text
    assert "lost update on file:" in text and "thread 2" in text


def test_without_the_library_the_python_level_os_wrappers_find_the_same_race() -> None:
    # Without the library, frontrun._io wraps os.open/os.read/os.write.
    r = run("same", preload=False)
    assert not r["holds"]
    assert r["native_events"] == 0
    assert r["reproduced"] == [10, 10]
    assert " on file:" in r["explanation"]


def test_without_ld_preload_the_hooks_installed_at_run_time_see_the_os_calls() -> None:
    r = run("same", preload=False, runtime_hooks=True)
    assert not r["holds"]
    assert r["native_events"] > 0
    assert r["reproduced"] == [10, 10]
    assert "lost update on file:" in r["explanation"]


def test_without_the_library_and_without_detect_io_the_counter_looks_race_free() -> None:
    r = run("same", preload=False, detect_io=False)
    assert r["holds"]
    assert r["native_events"] == 0
    assert r["executions"] == 1


def test_detect_io_false_ignores_the_library() -> None:
    r = run("same", preload=True, detect_io=False)
    assert r["holds"]
    assert r["native_events"] == 0


def test_counters_in_separate_files_need_one_execution() -> None:
    r = run("separate", preload=True)
    assert r["holds"]
    assert r["native_events"] > 0
    assert r["executions"] == 1


def test_a_native_mutex_around_the_update_orders_the_workers() -> None:
    # The lock and unlock are C calls (ctypes): their events become lock
    # edges, so no execution runs one worker's update inside the other's
    # critical section (which would stall on the real mutex), and every
    # execution keeps both increments.
    guarded = run("guarded", preload=True)
    assert guarded["holds"]
    assert guarded["executions"] == 2
    plain = run("same", preload=True)
    # Four more events per execution than the unguarded counter: two lock
    # and two unlock events.
    assert guarded["native_events"] // guarded["executions"] == plain["native_events"] // plain["executions"] + 4


def test_explorations_running_at_the_same_time_each_see_their_own_native_events() -> None:
    env = dict(os.environ, LD_PRELOAD=frontrun.preload_path())
    env.pop("FRONTRUN_RING", None)
    script = Path(__file__).with_name("two_explorations.py")
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout + proc.stderr
    results = json.loads(lines[-1][len("RESULT ") :])
    for name in ("a", "b"):
        r = results[name]
        assert not r["holds"] and r["native_events"] > 0 and r["inconclusive"] == [], (name, r)
        assert r["mentions_own_file"], (name, r)


def run_blocked(mode: str) -> dict[str, Any]:
    env = dict(os.environ, LD_PRELOAD=frontrun.preload_path())
    env.pop("FRONTRUN_RING", None)
    script = Path(__file__).with_name("blocked_recv.py")
    proc = subprocess.run([sys.executable, str(script), mode], env=env, capture_output=True, text=True, timeout=120)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout + proc.stderr
    result: dict[str, Any] = json.loads(lines[-1][len("RESULT ") :])
    return result


def test_a_worker_blocked_in_recv_lets_the_worker_that_feeds_it_run() -> None:
    # Worker 0 runs first and blocks in recv(); it is set aside, worker 1
    # sends, and worker 0's recv returns: no timeout, the invariant holds.
    r = run_blocked("fed")
    assert r["holds"] and r["inconclusive"] == []
    assert r["native_waits"] >= 1


def test_a_native_wait_nobody_ends_is_reported_as_such() -> None:
    r = run_blocked("starved")
    reasons = [why for _, why in r["inconclusive"]]
    assert any("thread 0 on socket:127.0.0.1:" in why and "waited in native code" in why for why in reasons), reasons
