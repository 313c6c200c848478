"""What the native session returns about an execution: frozen records with
named fields, which also read as the tuple of their fields."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from frontrun import _engine
from frontrun._run import running, trace_filter_of


class Box:
    def __init__(self) -> None:
        self.value = 0
        self.a = threading.Lock()
        self.b = threading.Lock()


def bump(box: Box) -> None:
    box.value = box.value + 1


def a_then_b(box: Box) -> None:
    with box.a, box.b:
        pass


def b_then_a(box: Box) -> None:
    with box.b, box.a:
        pass


def executions(threads: list[Callable[[Any], Any]], until: Callable[[Any, Any], bool]) -> tuple[Any, Any]:
    """Run executions of a search until ``until(session, run)`` holds;
    returns that session and run."""
    with running(len(threads), trace_filter_of((), ()), detect_io=False) as machinery:
        session = machinery.session("dpor")
        while session.begin():
            run = machinery.execute(session, Box, threads, 30.0, 30.0)
            if until(session, run):
                return session, run
    raise AssertionError("no execution met the condition")


def test_an_execution_ends_with_a_frozen_record_whose_fields_are_named() -> None:
    seen: dict[str, Any] = {}

    def racy(session: Any, run: Any) -> bool:
        seen["steps"] = session.steps()
        seen["describe"] = {a.key: session.describe(a.key) for s in seen["steps"] for a in s.accesses}
        return bool(run.report.races)

    _, run = executions([bump, bump], racy)
    report = run.report
    assert isinstance(report, _engine.ExecutionEnd)
    assert report.deadlock is None and report.deadlock_detail is None and report.aborted is None
    assert set(report.schedule) == {0, 1}
    race = report.races[0]
    assert isinstance(race, _engine.Race)
    assert race.first_step < race.second_step and (race.first_writes or race.second_writes)
    assert seen["describe"][race.key].kind == "attr" and seen["describe"][race.key].slot == "value"
    with pytest.raises(AttributeError):
        report.schedule = []  # type: ignore[misc]
    assert tuple(report) == (
        report.schedule,
        report.races,
        report.deadlock,
        report.deadlock_detail,
        report.engine_aborted,
        report.aborted,
    )
    assert len(report) == 6 and report[0] == report.schedule and report[-1] == report.aborted
    with pytest.raises(IndexError):
        report[6]
    assert report == report and report != tuple(report)
    assert repr(race).startswith(f"Race(first_step={race.first_step}, second_step={race.second_step}, key=")


def test_steps_accesses_and_descriptions_read_by_name_and_as_tuples() -> None:
    seen: dict[str, Any] = {}

    def first(session: Any, run: Any) -> bool:
        seen["steps"] = session.steps()
        seen["state"] = run.state
        # Keys are described until the next execution begins.
        seen["described"] = {a.key: session.describe(a.key) for s in seen["steps"] for a in s.accesses}
        seen["unknown"] = session.describe(0xDEAD_BEEF)
        return True

    executions([bump, bump], first)
    steps = seen["steps"]
    assert {s.thread for s in steps} == {0, 1}
    writes = [(s, a) for s in steps for a in s.accesses if a.is_write]
    assert len(writes) == 2, steps
    step, access = writes[0]
    assert isinstance(step, _engine.Step) and isinstance(access, _engine.Access)
    assert step.code is bump.__code__
    thread, code, offset, accesses = step
    assert (thread, code, offset, accesses) == (step.thread, step.code, step.offset, step.accesses)
    key, is_write = access
    assert (key, is_write) == (access.key, True)
    d = seen["described"][access.key]
    assert isinstance(d, _engine.KeyDescription)
    assert d.owner is seen["state"] and (d.kind, d.slot) == ("attr", "value")
    assert tuple(d) == (seen["state"], "attr", "value")
    assert seen["unknown"] is None


def test_a_deadlock_is_described_by_the_blocked_threads_and_what_they_wait_for() -> None:
    _, run = executions([a_then_b, b_then_a], lambda session, run: run.report.deadlock is not None)
    detail = run.report.deadlock_detail
    assert isinstance(detail, _engine.DeadlockDetail)
    assert sorted(run.report.deadlock) == [0, 1]
    assert sorted(e.thread for e in detail.cycle) == [0, 1]
    for edge in detail.cycle:
        assert isinstance(edge, _engine.BlockedThread)
        assert edge.waits == "lock" and len(edge.holds) == 1 and edge.target != edge.holds[0]
    held = {e.holds[0] for e in detail.cycle}
    assert {e.target for e in detail.cycle} == held
