"""Races of asyncio database drivers explored end to end, one scenario per run.

    python async_scenarios.py SCENARIO TAG

The async twin of ``scenarios.py``, run the same way under
``LD_PRELOAD=<frontrun.preload_path()>`` by ``test_async_drivers.py``: two
tasks on the event loop ``explore_async`` runs, each with a connection of
its own, and every conflict comes from the libc layer (the loop's thread
sends for whichever task runs). The tasks open their connections
themselves: an asyncio connection belongs to the loop it was opened on.
Prints one line ``RESULT <json>``.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any

import frontrun

SCENARIO, TAG = sys.argv[1], sys.argv[2]
TABLE = f"acct_{TAG}"
PG_DSN = "host=127.0.0.1 port=5432 dbname=test user=postgres sslmode=disable"
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"

Task = Callable[[Any], Any]


class State:
    def __init__(self) -> None:
        self.done = 0


def pg_table() -> tuple[Callable[[], State], Callable[[State], bool], Callable[[], None]]:
    """setup, invariant and cleanup over one row ``(1, 0)``, through a
    plain psycopg2 connection (outside the tasks)."""
    import psycopg2

    admin = psycopg2.connect(PG_DSN)
    admin.autocommit = True
    cur = admin.cursor()
    cur.execute(f"DROP TABLE IF EXISTS {TABLE}")
    cur.execute(f"CREATE TABLE {TABLE} (id int primary key, balance int)")

    def setup() -> State:
        c = admin.cursor()
        c.execute(f"DELETE FROM {TABLE}")
        c.execute(f"INSERT INTO {TABLE} VALUES (1, 0), (2, 0)")
        return State()

    def invariant(s: State) -> bool:
        c = admin.cursor()
        c.execute(f"SELECT balance FROM {TABLE} WHERE id = 1")
        return bool(c.fetchone()[0] == 2)

    def cleanup() -> None:
        # A task an execution left unfinished (its coroutine closed, not
        # run to its end) leaves its connection open in the middle of the
        # protocol, holding the table: end those backends first.
        c = admin.cursor()
        c.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND query LIKE %s",
            (f"%{TABLE}%",),
        )
        c.execute(f"DROP TABLE IF EXISTS {TABLE}")
        admin.close()

    return setup, invariant, cleanup


# --- asyncpg -----------------------------------------------------------------


async def asyncpg_lost_update(s: State) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_URL, ssl=False)
    try:
        balance = await conn.fetchval(f"SELECT balance FROM {TABLE} WHERE id = 1")
        await conn.execute(f"UPDATE {TABLE} SET balance = $1 WHERE id = 1", balance + 1)
    finally:
        await conn.close()


async def asyncpg_atomic(s: State) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_URL, ssl=False)
    try:
        await conn.execute(f"UPDATE {TABLE} SET balance = balance + 1 WHERE id = 1")
    finally:
        await conn.close()


async def asyncpg_for_update(s: State) -> None:
    # The row lock serialises the two transactions: the second task's
    # SELECT ... FOR UPDATE waits on the server until the first commits.
    import asyncpg

    conn = await asyncpg.connect(PG_URL, ssl=False)
    try:
        async with conn.transaction():
            balance = await conn.fetchval(f"SELECT balance FROM {TABLE} WHERE id = 1 FOR UPDATE")
            await conn.execute(f"UPDATE {TABLE} SET balance = $1 WHERE id = 1", balance + 1)
    finally:
        await conn.close()


# --- psycopg 3, AsyncConnection ------------------------------------------------


async def psycopg_lost_update(s: State) -> None:
    import psycopg

    async with await psycopg.AsyncConnection.connect(PG_DSN, autocommit=True) as conn:
        cur = await conn.execute(f"SELECT balance FROM {TABLE} WHERE id = 1")
        row = await cur.fetchone()
        assert row is not None
        await conn.execute(f"UPDATE {TABLE} SET balance = %s WHERE id = 1", (row[0] + 1,))


async def psycopg_atomic(s: State) -> None:
    import psycopg

    async with await psycopg.AsyncConnection.connect(PG_DSN, autocommit=True) as conn:
        await conn.execute(f"UPDATE {TABLE} SET balance = balance + 1 WHERE id = 1")


# --- redis.asyncio -------------------------------------------------------------

COUNTER = f"counter_{TAG}"


def redis_state() -> tuple[Callable[[], State], Callable[[State], bool], Callable[[], None]]:
    import redis

    admin = redis.Redis(host="127.0.0.1", port=6379)

    def setup() -> State:
        admin.set(COUNTER, 0)
        return State()

    def invariant(s: State) -> bool:
        return int(admin.get(COUNTER) or 0) == 2

    def cleanup() -> None:
        admin.delete(COUNTER)
        admin.close()

    return setup, invariant, cleanup


async def redis_client() -> Any:
    import redis.asyncio

    r = redis.asyncio.Redis(host="127.0.0.1", port=6379, single_connection_client=True)
    # Connect first: the handshake (CLIENT SETINFO) is not a keyed command.
    await r.ping()
    return r


async def redis_get_set(s: State) -> None:
    r = await redis_client()
    try:
        value = int(await r.get(COUNTER))
        await r.set(COUNTER, value + 1)
    finally:
        await r.aclose()


async def redis_incr(s: State) -> None:
    r = await redis_client()
    try:
        await r.incr(COUNTER)
    finally:
        await r.aclose()


# --- aiomysql, asyncmy (MariaDB) ---------------------------------------------


def mariadb_table() -> tuple[Callable[[], State], Callable[[State], bool], Callable[[], None]]:
    """``pg_table``'s twin on MariaDB, through a plain PyMySQL connection."""
    import pymysql

    admin = pymysql.connect(host="127.0.0.1", user="root", password="", database="test", autocommit=True)
    with admin.cursor() as c:
        c.execute(f"DROP TABLE IF EXISTS {TABLE}")
        c.execute(f"CREATE TABLE {TABLE} (id int primary key, balance int) ENGINE=InnoDB")

    def setup() -> State:
        with admin.cursor() as c:
            c.execute(f"DELETE FROM {TABLE}")
            c.execute(f"INSERT INTO {TABLE} VALUES (1, 0), (2, 0)")
        return State()

    def invariant(s: State) -> bool:
        with admin.cursor() as c:
            c.execute(f"SELECT balance FROM {TABLE} WHERE id = 1")
            row = c.fetchone()
            return bool(row is not None and row[0] == 2)

    def cleanup() -> None:
        with admin.cursor() as c:
            c.execute(f"DROP TABLE IF EXISTS {TABLE}")
        admin.close()

    return setup, invariant, cleanup


async def mysql_connect(driver: str) -> Any:
    if driver == "aiomysql":
        import aiomysql

        return await aiomysql.connect(host="127.0.0.1", user="root", password="", db="test", autocommit=True)
    import asyncmy

    return await asyncmy.connect(host="127.0.0.1", user="root", password="", database="test", autocommit=True)


def mysql_lost_update(driver: str) -> Task:
    async def lost_update(s: State) -> None:
        conn = await mysql_connect(driver)
        try:
            async with conn.cursor() as cur:
                await cur.execute(f"SELECT balance FROM {TABLE} WHERE id = 1")
                (balance,) = await cur.fetchone()
                await cur.execute(f"UPDATE {TABLE} SET balance = %s WHERE id = 1", (balance + 1,))
        finally:
            conn.close()

    return lost_update


def mysql_atomic(driver: str) -> Task:
    async def atomic(s: State) -> None:
        conn = await mysql_connect(driver)
        try:
            async with conn.cursor() as cur:
                await cur.execute(f"UPDATE {TABLE} SET balance = balance + 1 WHERE id = 1")
        finally:
            conn.close()

    return atomic


TASKS: dict[str, Task] = {
    "aiomysql:lost_update": mysql_lost_update("aiomysql"),
    "aiomysql:atomic": mysql_atomic("aiomysql"),
    "asyncmy:lost_update": mysql_lost_update("asyncmy"),
    "asyncmy:atomic": mysql_atomic("asyncmy"),
    "asyncpg:lost_update": asyncpg_lost_update,
    "asyncpg:atomic": asyncpg_atomic,
    "asyncpg:for_update": asyncpg_for_update,
    "psycopg:lost_update": psycopg_lost_update,
    "psycopg:atomic": psycopg_atomic,
    "redis:get_set": redis_get_set,
    "redis:incr": redis_incr,
}


def main() -> None:
    task = TASKS.get(SCENARIO)
    if task is None:
        raise SystemExit(f"unknown scenario {SCENARIO}")
    family = SCENARIO.partition(":")[0]
    if family == "redis":
        setup, invariant, cleanup = redis_state()
    elif family in ("aiomysql", "asyncmy"):
        setup, invariant, cleanup = mariadb_table()
    else:
        setup, invariant, cleanup = pg_table()
    start = time.monotonic()
    try:
        result = frontrun.explore_async(setup, [task, task], invariant, preemption_bound=None, deadlock_timeout=10.0)
    finally:
        cleanup()
    print(
        "RESULT "
        + json.dumps(
            {
                "holds": result.property_holds,
                "executions": result.num_explored,
                "seconds": round(time.monotonic() - start, 2),
                "explanation": result.explanation,
                "reproduced": [result.reproduction_successes, result.reproduction_attempts],
                "inconclusive": result.inconclusive,
                "native_events": result.native_events,
                "native_waits": result.native_waits,
                "events_lost": result.events_lost,
                "unseen": result.unseen_statements,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
