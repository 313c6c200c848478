"""Bad arguments are refused at once, naming their parameter.

The rows are in ``_bad_arguments.TABLE``; this file runs them and checks
that the table covers every parameter of every public entry point.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import warnings
from typing import Any

import frontrun
import pytest
from _bad_arguments import GOOD, TABLE, Bad
from frontrun import _engine

ENTRY_POINTS = {
    "explore_dpor": frontrun.explore_dpor,
    "replay": frontrun.replay,
    "record_accesses": frontrun.record_accesses,
    "reproduce": frontrun.reproduce,
}


def _call(row: Bad) -> Any:
    args = GOOD[row.call]()
    args[row.parameter] = row.fresh_value()
    if row.call == "reproduce":
        return frontrun.reproduce(args["token"])
    if row.call == "replay":
        schedule = args.pop("schedule")
        return frontrun.replay(schedule, **args)
    return ENTRY_POINTS[row.call](**args)


def _rows() -> list[Any]:
    return [pytest.param(row, id=row.id) for row in TABLE]


@pytest.mark.parametrize("row", _rows())
def test_a_bad_value_is_refused_with_a_message_naming_its_parameter(row: Bad) -> None:
    with warnings.catch_warnings():
        # Nothing may run far enough to warn about anything.
        warnings.simplefilter("error")
        with pytest.raises(row.error) as info:
            _call(row)
    assert type(info.value) is row.error
    message = str(info.value)
    assert row.fragment in message, message
    # A schedule may be given as a token, whose messages say "token".
    names = {row.parameter, "token"} if row.parameter in ("schedule", "token") else {row.parameter}
    assert any(name in message for name in names), message


@pytest.mark.parametrize("call", sorted(ENTRY_POINTS))
def test_every_parameter_of_every_entry_point_has_a_row(call: str) -> None:
    parameters = set(inspect.signature(ENTRY_POINTS[call]).parameters)
    covered = {row.parameter for row in TABLE if row.call == call}
    assert parameters - covered == set(), f"no bad-value row for {call}({', '.join(sorted(parameters - covered))})"


def test_the_good_arguments_of_the_table_are_accepted() -> None:
    # Otherwise a row could pass because of another argument.
    for call in ENTRY_POINTS:
        args = GOOD[call]()
        if call == "reproduce":
            frontrun.reproduce(args["token"])
        elif call == "replay":
            assert frontrun.replay(args.pop("schedule"), **args).invariant_holds
        else:
            ENTRY_POINTS[call](**args)


# -- the native boundary ----------------------------------------------------------


def test_a_panic_in_the_native_module_is_an_ordinary_exception_naming_where_it_happened() -> None:
    with pytest.raises(_engine.InternalError) as info:
        _engine._selftest_panic("the self-test panic")
    assert isinstance(info.value, RuntimeError)
    message = str(info.value)
    assert "frontrun internal error in _selftest_panic: the self-test panic at bindings/src/api/mod.rs:" in message
    assert "This is a bug in frontrun" in message


def test_a_caught_panic_prints_nothing_on_stderr() -> None:
    code = (
        "from frontrun import _engine\n"
        "try:\n"
        "    _engine._selftest_panic('quiet')\n"
        "except RuntimeError as e:\n"
        "    print(type(e).__name__)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "RUST_BACKTRACE"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "InternalError"
    assert proc.stderr == ""


@pytest.mark.parametrize("value", [float("nan"), -1.0])
def test_the_session_refuses_a_wait_that_is_not_a_duration(value: float) -> None:
    session = _engine.Session.serial(1, lambda code, module, caller: False, lambda *a: None)
    try:
        with pytest.raises(ValueError, match="timeout must be a number of seconds >= 0"):
            session.wait(value, 1.0)
        with pytest.raises(ValueError, match="deadlock_timeout must be a number of seconds >= 0"):
            session.wait(1.0, value)
    finally:
        session.close()
