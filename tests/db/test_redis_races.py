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
