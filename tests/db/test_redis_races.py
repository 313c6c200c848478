"""Redis through redis-py: key-level conflicts from the RESP stream."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dbexplain import interleaving

Scenario = Callable[[str], dict[str, Any]]


def test_get_then_set_loses_an_update(scenario: Scenario) -> None:
    r = scenario("redis:get_set")
    assert not r["holds"]
    assert r["reproduced"] == [10, 10]
    steps = interleaving(r["explanation"])
    gets = [i for i, ln in enumerate(steps) if "r.get(counter)" in ln]
    sets = [i for i, ln in enumerate(steps) if "r.set(counter" in ln]
    assert len(gets) == 2 and len(sets) == 2 and max(gets) < min(sets), steps
    assert "lost update on redis:counter_" in r["explanation"]


def test_incr_holds(scenario: Scenario) -> None:
    assert scenario("redis:incr")["holds"]


def test_different_keys_need_one_execution(scenario: Scenario) -> None:
    r = scenario("redis:keys")
    assert r["holds"]
    assert r["executions"] == 1


def test_setnx_guarded_initialisation_holds(scenario: Scenario) -> None:
    r = scenario("redis:setnx")
    assert r["holds"]
    assert r["executions"] >= 2


def test_a_script_on_one_key_and_get_set_on_another_need_one_execution(scenario: Scenario) -> None:
    r = scenario("redis:eval_keys")
    assert r["holds"]
    assert r["executions"] == 1


def test_a_script_is_one_atomic_step_on_its_declared_keys(scenario: Scenario) -> None:
    # Two scripts incrementing one key: ordered both ways, never lost.
    r = scenario("redis:eval_incr")
    assert r["holds"]
    assert r["executions"] == 2


def test_a_script_read_then_a_set_loses_an_update_on_the_declared_key(scenario: Scenario) -> None:
    r = scenario("redis:eval_get_set")
    assert not r["holds"]
    steps = interleaving(r["explanation"])
    assert sum("eval(get_script" in ln for ln in steps) == 2, steps
    assert "redis:counter_" in r["explanation"]


def test_transactions_on_different_keys_need_one_execution(scenario: Scenario) -> None:
    r = scenario("redis:multi_keys")
    assert r["holds"]
    assert r["executions"] == 1


def test_a_read_outside_multi_still_loses_the_update_inside_it(scenario: Scenario) -> None:
    r = scenario("redis:multi_get_set")
    assert not r["holds"]


def test_watch_with_retry_holds(scenario: Scenario) -> None:
    r = scenario("redis:watch_retry")
    assert r["holds"]
