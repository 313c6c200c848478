"""asyncio database drivers under the preload library, explored by
``explore_async``: the event loop's one thread sends for whichever task
runs, and its native events join that task's step."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dbexplain import interleaving

Scenario = Callable[[str], dict[str, Any]]


def _reads_then_writes_of_the_row(explanation: str) -> None:
    steps = interleaving(explanation)
    row = [ln for ln in steps if "#id=1]" in ln]
    first_write = min(i for i, ln in enumerate(row) if "[write sql:acct_" in ln)
    readers = {ln.split("|")[0].strip() for ln in row[:first_write] if "[read sql:acct_" in ln}
    writers = {ln.split("|")[0].strip() for ln in row if "[write sql:acct_" in ln}
    # Both tasks read the row before either wrote it, and both wrote it.
    assert readers == writers == {"task 0", "task 1"}, steps
    conflicts = explanation.partition("Conflicts:")[2].partition("\n\n")[0]
    assert any(" on sql:acct_" in ln and "#id=1:" in ln for ln in conflicts.splitlines()), conflicts
    # Each access is shown at the test's own statement, not at the await
    # inside the driver where the task yielded.
    assert row and all("async_scenarios.py:" in ln and "await " in ln for ln in row), steps


def test_an_asyncpg_lost_update_is_found_with_its_table_and_row(async_scenario: Scenario) -> None:
    r = async_scenario("asyncpg:lost_update")
    assert r["holds"] is False
    assert "lost update on sql:acct_" in r["explanation"]
    _reads_then_writes_of_the_row(r["explanation"])


def test_the_atomic_asyncpg_update_holds(async_scenario: Scenario) -> None:
    assert async_scenario("asyncpg:atomic")["holds"] is True


def test_asyncpg_select_for_update_holds_without_timing_out(async_scenario: Scenario) -> None:
    # The second task's SELECT ... FOR UPDATE waits on the server for the
    # first one's COMMIT: it is blocked on the answer it awaits, and the
    # loop runs the other task meanwhile (a hang would end inconclusive).
    r = async_scenario("asyncpg:for_update")
    assert r["holds"] is True
    assert r["executions"] >= 2


def test_a_psycopg_async_lost_update_is_found_with_its_table_and_row(async_scenario: Scenario) -> None:
    r = async_scenario("psycopg:lost_update")
    assert r["holds"] is False
    # Replays mostly follow it; a reply slower than the loop's settling
    # time can make one differ (docs/limits.md, asyncio tasks).
    assert r["reproduced"][0] >= 5, r["reproduced"]
    _reads_then_writes_of_the_row(r["explanation"])


def test_the_atomic_psycopg_async_update_holds(async_scenario: Scenario) -> None:
    assert async_scenario("psycopg:atomic")["holds"] is True


def test_an_aiomysql_lost_update_is_found_with_its_table_and_row(async_scenario: Scenario) -> None:
    r = async_scenario("aiomysql:lost_update")
    assert r["holds"] is False
    assert "lost update on sql:acct_" in r["explanation"]
    assert r["reproduced"] == [10, 10]
    _reads_then_writes_of_the_row(r["explanation"])


def test_the_atomic_aiomysql_update_holds(async_scenario: Scenario) -> None:
    assert async_scenario("aiomysql:atomic")["holds"] is True


def test_an_asyncmy_lost_update_is_found_with_its_table_and_row(async_scenario: Scenario) -> None:
    # Before 3.12 asyncmy's connect goes through asyncio.wait_for, which
    # runs the coroutine in a task of its own: a task the tasks created.
    r = async_scenario("asyncmy:lost_update")
    assert r["holds"] is False and r["inconclusive"] == []
    assert "lost update on sql:acct_" in r["explanation"]
    _reads_then_writes_of_the_row(r["explanation"])


def test_the_atomic_asyncmy_update_holds(async_scenario: Scenario) -> None:
    assert async_scenario("asyncmy:atomic")["holds"] is True


def test_a_redis_asyncio_lost_update_is_found(async_scenario: Scenario) -> None:
    # redis.asyncio sends each command through asyncio.wait_for (a task of
    # its own before 3.12).
    r = async_scenario("redis:get_set")
    assert r["holds"] is False and r["inconclusive"] == []
    assert "counter_" in r["explanation"]
    assert r["reproduced"] == [10, 10]


def test_the_atomic_redis_asyncio_incr_holds(async_scenario: Scenario) -> None:
    r = async_scenario("redis:incr")
    assert r["holds"] is True and r["inconclusive"] == []
