"""An execution given up while a worker holds a transaction open leaves
nothing behind on the server: its workers run to their end, so the next
execution's setup() is not blocked by a row lock nobody will release."""

from __future__ import annotations

import select
import time
import uuid
from typing import Any

import frontrun
import pytest


def test_a_given_up_execution_leaves_no_transaction_open(postgresql_dsn: str) -> None:
    psycopg2 = pytest.importorskip("psycopg2")
    app = f"frontrun-given-up-{uuid.uuid4().hex[:8]}"
    table = f"given_up_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(postgresql_dsn)
    admin.autocommit = True
    admin.cursor().execute(f"CREATE TABLE {table} (id int PRIMARY KEY, n int)")

    class State:
        def __init__(self) -> None:
            with admin.cursor() as cur:
                # Blocks for as long as a worker of an earlier execution
                # holds the row in an open transaction.
                cur.execute(f"DELETE FROM {table}")
                cur.execute(f"INSERT INTO {table} VALUES (1, 0)")
            self.conn = psycopg2.connect(postgresql_dsn, application_name=app)
            self.flag = 0

    def holder(s: State) -> None:
        cur = s.conn.cursor()
        cur.execute(f"UPDATE {table} SET n = n + 1 WHERE id = 1")  # opens a transaction
        s.flag = 1  # a scheduling point inside the transaction
        s.conn.commit()

    def sleeper(s: State) -> Any:
        s.flag = 2
        # Blocked in C for real (a worker's time.sleep runs on the virtual clock).
        select.select([], [], [], 1.0)  # outlives timeout_per_run: the execution is given up

    try:
        start = time.monotonic()
        result = frontrun.explore_dpor(
            State, [holder, sleeper], lambda s: True, detect_io=False, timeout_per_run=0.3, max_executions=3
        )
        assert time.monotonic() - start < 20
        assert result.verdict == "inconclusive"
        with admin.cursor() as cur:
            cur.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE application_name = %s AND state LIKE 'idle in transaction%%'",
                (app,),
            )
            assert cur.fetchone()[0] == 0
    finally:
        admin.cursor().execute(f"DROP TABLE IF EXISTS {table}")
        admin.close()
