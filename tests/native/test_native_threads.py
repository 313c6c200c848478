"""Threads that a real C extension starts with pthread_create: what they do
belongs to the worker that started them (its file events join the worker's
step, named after the thread's start site), so a lost update between such a
thread and another worker is found and replayed, the locked twin holds, and
a thread still running when its worker ends is named in the notes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from c_extension import build_extension, run_script


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``_native_threads`` compiled from native_threads.c."""
    return build_extension("native_threads", tmp_path_factory.mktemp("native_threads"))


# Under LD_PRELOAD, and with the hooks the first exploration installs at
# run time (GOT entries).
HOW = pytest.mark.parametrize("preload", [True, False], ids=["preloaded", "runtime-hooks"])


def run(build_dir: Path, mode: str, *, preload: bool) -> dict[str, Any]:
    return run_script("native_threads.py", str(build_dir), mode, preload=preload)


def assert_lost_update_by_the_native_thread(r: dict[str, Any]) -> None:
    assert r["holds"] is False, r["explanation"]
    explanation = r["explanation"]
    assert "lost update on file:" in explanation, explanation
    # The native thread's write, in worker 0's step, named after where the
    # thread was started.
    assert "in a native thread started at _native_threads" in explanation, explanation
    assert r["reproduced"] == [10, 10], explanation


@HOW
def test_a_thread_started_and_joined_in_one_call_is_part_of_its_worker(build_dir: Path, preload: bool) -> None:
    assert_lost_update_by_the_native_thread(run(build_dir, "joined", preload=preload))


@HOW
def test_a_thread_joined_in_a_later_call_is_part_of_its_worker(build_dir: Path, preload: bool) -> None:
    r = run(build_dir, "later", preload=preload)
    assert_lost_update_by_the_native_thread(r)
    assert r["notes"] == []


@HOW
def test_the_locked_twin_holds(build_dir: Path, preload: bool) -> None:
    r = run(build_dir, "locked", preload=preload)
    assert r["holds"] is True and r["exhausted"] is True, r["explanation"]
    assert r["inconclusive"] == [] and r["notes"] == []
    # Both threads' reads and writes of the file were seen.
    assert r["native_events"] > 0


@HOW
def test_a_thread_still_running_when_its_worker_ends_is_named(build_dir: Path, preload: bool) -> None:
    r = run(build_dir, "outlives", preload=preload)
    assert r["holds"] is True and r["exhausted"] is True, r["explanation"]
    assert any(
        note.startswith("a thread that native code started at _native_threads")
        and "was still running when its worker ended" in note
        for note in r["notes"]
    ), r["notes"]
