"""pthread condition variables of a real C extension, used with the GIL
released, are scheduled: a wait releases its mutex and parks the worker
until a signal the exploration sees, a signal sent before the wait is
explored as its own order (a missed signal is found as a deadlock, not a
stall), and a timed wait that nothing signals times out in the model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from c_extension import build_extension, run_script


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``_native_conds`` compiled from native_conds.c."""
    return build_extension("native_conds", tmp_path_factory.mktemp("native_conds"))


# Under LD_PRELOAD, and with the hooks the first exploration installs at
# run time (GOT entries).
HOW = pytest.mark.parametrize("preload", [True, False], ids=["preloaded", "runtime-hooks"])


def run(
    build_dir: Path, mode: str, *, preload: bool = True, gate: bool = True, deadlock_timeout: float = 5.0
) -> dict[str, Any]:
    return run_script("native_conds.py", str(build_dir), mode, str(deadlock_timeout), preload=preload, gate=gate)


@HOW
def test_a_producer_consumer_handshake_over_a_condition_holds_without_stalling(build_dir: Path, preload: bool) -> None:
    r = run(build_dir, "handshake", preload=preload)
    assert r["holds"] is True, r["explanation"]
    assert r["inconclusive"] == [] and r["deadlock"] is None
    # The consumer waits first (and is woken by the signal), or the producer
    # puts first (and the consumer never waits): both are explored.
    assert r["executions"] == 2
    # Consumer first: lock, wait, (producer: lock, signal, unlock), the
    # wait's relock, unlock; producer first: 3 + lock, unlock. All gated.
    assert r["native_events"] == 12, r
    # Nobody waited for deadlock_timeout (5 s).
    assert r["seconds"] < 2.0, r


@HOW
def test_a_signal_sent_before_the_wait_is_found_as_a_deadlock(build_dir: Path, preload: bool) -> None:
    # take_once() waits without checking the mailbox: when the producer
    # runs first, its signal wakes nobody and the wait never ends.
    r = run(build_dir, "missed", preload=preload)
    assert r["holds"] is False
    assert r["inconclusive"] == []
    assert r["deadlock"] is not None, r["explanation"]
    assert r["deadlock"].startswith("every unfinished thread is blocked"), r["deadlock"]
    assert "thread 0 waits on cond:0x" in r["deadlock"] and "_native_conds" in r["deadlock"], r["deadlock"]
    # The signal and the wait conflict on the condition.
    assert "pthread_cond_signal()" in r["explanation"] and "pthread_cond_wait()" in r["explanation"]
    assert "Reproduced 10/10 times" in r["explanation"], r["explanation"]
    # Found by the scheduler, not by deadlock_timeout (5 s).
    assert r["seconds"] < 2.0, r


@HOW
def test_a_timed_wait_nothing_signals_times_out_in_the_model(build_dir: Path, preload: bool) -> None:
    # take_within(30000) waits 30 s at most: the invariant asks for
    # -ETIMEDOUT, returned at once since every other worker is done.
    r = run(build_dir, "timed", preload=preload)
    assert r["holds"] is True, r["explanation"]
    assert r["inconclusive"] == [] and r["deadlock"] is None
    assert r["seconds"] < 2.0, r
    # lock, timedwait, relock, unlock.
    assert r["native_events"] == 4 * r["executions"], r


def test_a_signal_made_holding_the_gil_wakes_a_scheduled_waiter_in_its_step(build_dir: Path) -> None:
    # The producer holds the GIL: its signal is no scheduling point, but it
    # wakes the consumer parked in the model, in the producer's step (else
    # the consumer-first run would end as a deadlock too). Filled and
    # signalled without the mutex, the signal can fall between the
    # consumer's check of the mailbox and its wait: that run is the one
    # reported, with the signal before the wait.
    r = run(build_dir, "unlocked-gil")
    assert r["holds"] is False
    assert r["deadlock"] is not None and "waits on cond:0x" in r["deadlock"], r
    text = r["explanation"]
    assert "pthread_cond_signal()" in text, text
    assert text.index("pthread_cond_signal()") < text.index("pthread_cond_wait()"), text
    assert r["executions"] >= 2
    assert r["seconds"] < 2.0, r


def test_a_broadcast_wakes_every_waiter(build_dir: Path) -> None:
    r = run(build_dir, "broadcast")
    assert r["holds"] is True, r["explanation"]
    assert r["inconclusive"] == [] and r["deadlock"] is None
    assert r["executions"] > 2
    assert r["seconds"] < 5.0, r


def test_without_the_gate_a_consumer_waiting_on_a_condition_stalls(build_dir: Path) -> None:
    # FRONTRUN_MUTEX_GATE=0: the wait is libc's, unseen. The consumer, which
    # holds the turn, waits in pthread_cond_wait for a producer that cannot
    # run, until deadlock_timeout gives the execution up.
    r = run(build_dir, "handshake", gate=False, deadlock_timeout=0.5)
    assert r["holds"] is not True
    assert r["inconclusive"] and "deadlock_timeout" in r["inconclusive"][0][1], r
