"""Connections opened inside the workers: a connect, its authentication and
the mutexes client libraries take on the way (libkrb5, OpenSSL set-up)
order nothing, so independent rows need one execution, as with connections
from ``setup()``, and the lost update on one row is still found."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

Scenario = Callable[[str], dict[str, Any]]

DRIVERS = ["psycopg2", "psycopg", "mysqlclient", "pymysql"]


@pytest.mark.parametrize("driver", DRIVERS)
def test_workers_with_their_own_connections_on_different_rows_need_one_execution(
    scenario: Scenario, driver: str
) -> None:
    r = scenario(f"{driver}:rows_connect_in_worker")
    assert r["holds"]
    assert r["executions"] == 1


@pytest.mark.parametrize("driver", DRIVERS)
def test_workers_with_their_own_connections_still_lose_an_update_on_one_row(scenario: Scenario, driver: str) -> None:
    r = scenario(f"{driver}:lost_update_connect_in_worker")
    assert not r["holds"]
    assert "lost update on sql:acct_" in r["explanation"]


@pytest.mark.parametrize("driver", DRIVERS)
def test_workers_with_their_own_connections_lock_a_row_in_two_orders(scenario: Scenario, driver: str) -> None:
    r = scenario(f"{driver}:for_update_connect_in_worker")
    assert r["holds"]
    assert r["executions"] == 2
