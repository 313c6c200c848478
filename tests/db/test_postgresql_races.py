"""PostgreSQL through psycopg2 (libpq, C) and psycopg 3: races found from
the wire protocol alone, race-free twins that hold, and a worker blocked
by the server on another worker's row lock."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from dbexplain import interleaving

Scenario = Callable[[str], dict[str, Any]]


@pytest.mark.parametrize("driver", ["psycopg2", "psycopg"])
def test_read_then_write_back_loses_an_update(scenario: Scenario, driver: str) -> None:
    r = scenario(f"{driver}:lost_update")
    assert not r["holds"]
    assert r["reproduced"] == [10, 10]
    steps = interleaving(r["explanation"])
    selects = [i for i, ln in enumerate(steps) if "SELECT balance" in ln]
    updates = [i for i, ln in enumerate(steps) if "UPDATE" in ln]
    assert len(selects) == 2 and len(updates) == 2, steps
    assert max(selects) < min(updates), steps
    assert {steps[i].split("|")[0].strip() for i in selects} == {"thread 0", "thread 1"}
    assert "[read sql:acct_" in steps[selects[0]] and "#id=1]" in steps[selects[0]]
    assert "lost update on sql:acct_" in r["explanation"]


def test_statements_kept_in_variables_are_shown_as_sent(scenario: Scenario) -> None:
    r = scenario("psycopg2:lost_update_in_variables")
    assert not r["holds"]
    text = r["explanation"]
    assert text.count("sent: SELECT balance FROM acct_") == 2
    # Both workers wrote back the same stale value plus one.
    assert text.count("SET balance = 1 WHERE id = 1") == 2


def test_atomic_increment_in_the_server_holds(scenario: Scenario) -> None:
    r = scenario("psycopg2:atomic")
    assert r["holds"]


@pytest.mark.parametrize("driver", ["psycopg2", "psycopg"])
def test_select_for_update_orders_the_transactions_by_their_row_lock(scenario: Scenario, driver: str) -> None:
    # The row lock a transaction holds from its SELECT ... FOR UPDATE to its
    # COMMIT is a lock to the search: the two lock orders, one execution
    # each, and no execution puts the second request inside the first
    # transaction for nothing.
    r = scenario(f"{driver}:for_update")
    assert r["inconclusive"] == []
    assert r["holds"]
    assert r["executions"] == 2


@pytest.mark.parametrize("driver", ["psycopg2", "psycopg"])
def test_a_worker_the_server_holds_back_on_a_row_lock_is_set_aside_at_once(scenario: Scenario, driver: str) -> None:
    # psycopg 3 waits for the server by polling in a loop, 100 ms at a time:
    # a poll that times out does not end the wait.
    r = scenario(f"{driver}:for_update_waits")
    assert r["inconclusive"] == []
    assert r["holds"]
    # Some execution ran worker 1's SELECT ... FOR UPDATE inside worker 0's
    # transaction: the server made it wait, and the scheduler let worker 0
    # commit instead of timing out.
    assert r["native_waits"] > 0
    # Worker 0 first with the flag written before or after its read, or
    # worker 1's whole transaction first.
    assert r["executions"] == 3


def test_an_advisory_lock_around_the_update_holds_without_timing_out(scenario: Scenario) -> None:
    r = scenario("psycopg2:advisory")
    assert r["holds"]
    assert r["native_waits"] > 0


def test_different_rows_of_one_table_need_one_execution(scenario: Scenario) -> None:
    r = scenario("psycopg2:rows")
    assert r["holds"]
    assert r["executions"] == 1


def test_unrelated_tables_need_one_execution(scenario: Scenario) -> None:
    r = scenario("psycopg2:tables")
    assert r["holds"]
    assert r["executions"] == 1


def test_check_then_insert_without_a_unique_constraint_inserts_twice(scenario: Scenario) -> None:
    r = scenario("psycopg2:check_then_insert")
    assert not r["holds"]
    steps = interleaving(r["explanation"])
    assert sum("SELECT name" in ln for ln in steps) == 2
    assert sum("INSERT INTO" in ln for ln in steps) == 2


@pytest.mark.parametrize("driver", ["psycopg2", "psycopg"])
def test_replays_of_a_failure_follow_the_row_lock_a_worker_waited_on(scenario: Scenario, driver: str) -> None:
    # The failing interleaving has worker 1 waiting on the server for
    # worker 0's row lock; each replay must reach the same wait, and the
    # replay sets the waiting worker aside as the search did, from the
    # lock, not after a timer.
    r = scenario(f"{driver}:for_update_waits_replayed")
    assert r["holds"] is False
    assert r["reproduced"] == [10, 10]
