"""Transactions at each isolation level, on both SQL servers: a snapshot
(REPEATABLE READ, SERIALIZABLE, MariaDB's default) is ordered only against
commits to what it reads, so transactions on different tables or rows need
one execution, while transactions on one row still lose the update or fail
to serialize."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

Scenario = Callable[[str], dict[str, Any]]

DRIVERS = ["psycopg2", "psycopg", "mysqlclient", "pymysql"]
LEVELS = ["default", "read_committed", "repeatable_read", "serializable"]


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("driver", DRIVERS)
def test_transactions_on_different_tables_need_one_execution(scenario: Scenario, driver: str, level: str) -> None:
    r = scenario(f"{driver}:txn_{level}_tables")
    assert r["holds"]
    assert r["executions"] == 1


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("driver", DRIVERS)
def test_transactions_on_different_rows_need_one_execution(scenario: Scenario, driver: str, level: str) -> None:
    r = scenario(f"{driver}:txn_{level}_rows")
    assert r["holds"]
    assert r["executions"] == 1


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("driver", ["psycopg2", "mysqlclient", "pymysql"])
def test_transactions_on_one_row_lose_the_update_or_fail_to_serialize(
    scenario: Scenario, driver: str, level: str
) -> None:
    r = scenario(f"{driver}:txn_{level}_row")
    assert not r["holds"]
    # The explanation names the table and the row both workers used.
    assert "sql:acct_" in r["explanation"] and "#id=1" in r["explanation"]


@pytest.mark.parametrize("driver", ["psycopg2", "mysqlclient", "pymysql"])
def test_a_commit_before_the_snapshot_is_seen_by_a_table_read_after_it(scenario: Scenario, driver: str) -> None:
    # The reader's snapshot statement reads one table, a later statement
    # another: the exploration learns that and still orders the writer's
    # commit before the snapshot.
    r = scenario(f"{driver}:late_read")
    assert not r["holds"]
    # The snapshot statement (a read of TABLE) is shown reading OTHER: its
    # snapshot covers the table read later, ordered against the writer's
    # commit (internally through the pseudo-table `<commits:OTHER>`, which
    # explanations name as the table itself).
    snapshot = [ln for ln in r["explanation"].splitlines() if "SELECT balance FROM {TABLE}" in ln]
    assert len(snapshot) == 1 and "read sql:other_" in snapshot[0], r["explanation"]
    assert "<commits" not in r["explanation"]
