"""The C drivers' races found without ``LD_PRELOAD``: the scenario's
process starts plainly, and the explorer installs the preload library's
hooks at run time by rewriting the loaded objects' GOT entries
(``bindings/src/got_hooks.rs``). The drivers are imported before the
exploration starts, as a test module imports them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from dbexplain import interleaving

Scenario = Callable[..., dict[str, Any]]


@pytest.mark.parametrize("driver", ["psycopg2", "mysqlclient"])
def test_a_c_driver_s_lost_update_is_found_with_hooks_installed_at_run_time(scenario: Scenario, driver: str) -> None:
    r = scenario(f"{driver}:lost_update", preload=False)
    assert not r["holds"]
    assert r["reproduced"] == [10, 10]
    steps = interleaving(r["explanation"])
    selects = [i for i, ln in enumerate(steps) if "SELECT balance" in ln]
    updates = [i for i, ln in enumerate(steps) if "UPDATE" in ln]
    assert len(selects) == 2 and len(updates) == 2 and max(selects) < min(updates), steps


def test_the_race_free_twin_still_holds_with_hooks_installed_at_run_time(scenario: Scenario) -> None:
    r = scenario("psycopg2:atomic", preload=False)
    assert r["holds"]


@pytest.mark.parametrize("driver", ["psycopg2", "mysqlclient"])
def test_a_c_driver_s_traffic_that_nobody_sees_is_not_a_pass(scenario: Scenario, driver: str) -> None:
    # No LD_PRELOAD and the run-time hooks refused: libpq's and libmariadb's
    # traffic is invisible, so the lost update cannot be found, and the
    # executions say why they are not checked instead of holding.
    r = scenario(f"{driver}:lost_update", preload=False, runtime_hooks=False)
    assert r["native_events"] == 0
    assert r["holds"] is None, r
    assert r["inconclusive"], r
    why = r["inconclusive"][0][1]
    assert "socket I/O from native code" in why and "FRONTRUN_RUNTIME_HOOKS=0" in why, why
    assert "frontrun pytest" in why
    port = "5432" if driver == "psycopg2" else "3306"
    assert f"127.0.0.1:{port}" in why, why


def test_python_level_socket_traffic_is_not_taken_for_native_traffic(scenario: Scenario) -> None:
    # redis-py talks through Python's socket methods, which frontrun sees
    # without any native hook: the race is found and nothing is unchecked.
    r = scenario("redis:get_set", preload=False, runtime_hooks=False)
    assert r["holds"] is False, r
    assert r["inconclusive"] == [], r["inconclusive"]
