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
