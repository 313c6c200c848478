"""MariaDB through mysqlclient (libmariadb, C: only the preload library
sees its traffic) and PyMySQL (pure Python over the socket module)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from dbexplain import interleaving

Scenario = Callable[[str], dict[str, Any]]


@pytest.mark.parametrize("driver", ["mysqlclient", "pymysql"])
def test_read_then_write_back_loses_an_update(scenario: Scenario, driver: str) -> None:
    r = scenario(f"{driver}:lost_update")
    assert not r["holds"]
    assert r["reproduced"] == [10, 10]
    steps = interleaving(r["explanation"])
    selects = [i for i, ln in enumerate(steps) if "SELECT balance" in ln]
    updates = [i for i, ln in enumerate(steps) if "UPDATE" in ln]
    assert len(selects) == 2 and len(updates) == 2 and max(selects) < min(updates), steps


def test_select_for_update_in_a_transaction_holds_without_timing_out(scenario: Scenario) -> None:
    r = scenario("mysqlclient:for_update")
    assert r["holds"]
    assert r["native_waits"] > 0
