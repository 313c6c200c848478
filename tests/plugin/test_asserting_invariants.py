"""Invariants written with ``assert``: the failing assertion is the user's
own, raised again by ``assert_holds`` with the explanation after it."""

from __future__ import annotations

import re
import traceback

import pytest
from frontrun import explore_dpor, replay


class Counter:
    def __init__(self) -> None:
        self.value = 0

    def increment(self) -> None:
        current = self.value
        self.value = current + 1


THREADS = [Counter.increment, Counter.increment]

# Compiled here rather than written in this module, so that pytest does not
# rewrite the assert: this is the plain statement users outside pytest get.
namespace: dict[str, object] = {}
exec(
    compile(
        "class CountMismatch(AssertionError):\n"
        "    pass\n"
        "def plain_assert(c):\n"
        "    assert c.value == 2, f'value is {c.value}'\n"
        "def raises_subclass(c):\n"
        "    if c.value != 2:\n"
        "        raise CountMismatch(c.value)\n"
        "    assert c.value >= 0\n",
        "<invariants>",
        "exec",
    ),
    namespace,
)
plain_assert = namespace["plain_assert"]
raises_subclass = namespace["raises_subclass"]
CountMismatch = namespace["CountMismatch"]


def test_a_plain_assert_fails_the_exploration_and_is_raised_again_with_the_explanation() -> None:
    result = explore_dpor(Counter, THREADS, plain_assert, detect_io=False, reproduce_on_failure=2)
    assert not result.property_holds and result.counterexample == [0, 1, 1, 0]
    assert result.reproduction_successes == 2
    with pytest.raises(AssertionError) as raised:
        result.assert_holds()
    message = str(raised.value)
    assert message.startswith("value is 1\n\nRace found after 2 executions (invariant violated).")
    assert "lost update on Counter.value" in message
    # The traceback still reaches the assert statement.
    frames = traceback.extract_tb(raised.value.__traceback__)
    assert frames[-1].filename == "<invariants>" and frames[-1].lineno == 4
    # Raising twice does not repeat the explanation.
    with pytest.raises(AssertionError) as again:
        result.assert_holds()
    assert str(again.value) == message


def test_the_users_assertion_type_is_kept() -> None:
    result = explore_dpor(Counter, THREADS, raises_subclass, detect_io=False, reproduce_on_failure=0)
    with pytest.raises(CountMismatch, match=re.escape("1\n\nRace found after 2 executions")):
        result.assert_holds()


def test_replay_reports_the_assertion() -> None:
    run = replay([0, 1, 1, 0], Counter, THREADS, plain_assert)
    assert run.invariant_holds is False and run.failed
    assert isinstance(run.invariant_error, AssertionError) and str(run.invariant_error) == "value is 1"
    serial = replay([0, 0, 1, 1], Counter, THREADS, plain_assert)
    assert serial.invariant_holds is True and serial.invariant_error is None


def test_an_invariant_returning_none_without_asserting_is_refused() -> None:
    def forgot_return(c: Counter) -> None:
        c.value == 2  # noqa: B015

    with pytest.raises(TypeError, match="invariant returned None; return a bool, or check with assert"):
        explore_dpor(Counter, THREADS, forgot_return, detect_io=False)


def test_an_invariant_that_asserts_and_returns_none_passes_when_the_assert_holds() -> None:
    result = explore_dpor(Counter, THREADS, plain_assert, detect_io=False, max_executions=1)
    # The first execution runs the threads one after the other: no race.
    assert result.num_explored == 1 and result.property_holds
