"""Database races explored end to end, one scenario per run.

    python scenarios.py SCENARIO TAG

Run under ``LD_PRELOAD=<frontrun.preload_path()>`` by the tests beside this
file: every conflict comes from the libc layer (the drivers are used as
they are, nothing patches ``cursor.execute``). TAG makes table and key
names unique, so runs against the same servers do not meet; everything a
scenario creates is removed at the end. Prints one line ``RESULT <json>``.
"""

from __future__ import annotations

import json
import os
import sys
import time
import zlib
from collections.abc import Callable
from typing import Any

import frontrun

SCENARIO, TAG = sys.argv[1], sys.argv[2]
TABLE = f"acct_{TAG}"
OTHER = f"other_{TAG}"
USERS = f"users_{TAG}"
# Advisory lock ids are server-wide: one per run.
LOCK_ID = zlib.crc32(TAG.encode())
PG_DSN = "host=127.0.0.1 port=5432 dbname=test user=postgres sslmode=disable"


def pg_connect(driver: str = "psycopg2") -> Any:
    # ``<driver>+tls``: the same driver with TLS required, whatever the
    # server's and libpq's defaults.
    driver, _, tls = driver.partition("+")
    dsn = PG_DSN.replace("sslmode=disable", "sslmode=require") if tls else PG_DSN
    if driver == "psycopg":
        import psycopg

        return psycopg.connect(dsn, autocommit=True)
    import psycopg2

    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    return conn


def mysql_connect(driver: str) -> Any:
    # ``<driver>+tls``: TLS required, to the private server with TLS on
    # (tests/db/mariadb_tls.py) whose port and certificate the test gives.
    driver, _, tls = driver.partition("+")
    port = int(os.environ["FRONTRUN_TEST_MARIADB_TLS_PORT"]) if tls else 3306
    if driver == "pymysql":
        import pymysql

        extra: dict[str, Any] = {}
        if tls:
            extra = {"ssl_ca": os.environ["FRONTRUN_TEST_MARIADB_TLS_CA"], "ssl_verify_identity": False}
        return pymysql.connect(
            host="127.0.0.1", port=port, user="root", password="", database="test", autocommit=True, **extra
        )
    import MySQLdb

    mode = "REQUIRED" if tls else "DISABLED"
    conn = MySQLdb.connect(host="127.0.0.1", port=port, user="root", passwd="", db="test", ssl_mode=mode)
    conn.autocommit(True)
    return conn


class State:
    def __init__(self, conns: list[Any]) -> None:
        self.conns = conns
        self.flag = 0


# --- SQL ----------------------------------------------------------------------


def begin(cur: Any, level: str, mysql: bool) -> None:
    """Open a transaction at isolation ``level`` (``"default"``: the server's)."""
    if level == "default":
        cur.execute("BEGIN")
    elif mysql:
        # MariaDB: for the next transaction only.
        cur.execute(f"SET TRANSACTION ISOLATION LEVEL {level}")
        cur.execute("START TRANSACTION")
    else:
        cur.execute(f"BEGIN ISOLATION LEVEL {level}")


def sql_scenario(connect: Callable[[], Any], kind: str, mysql: bool = False) -> tuple[Any, ...]:
    """(setup, threads, invariant, cleanup) for a two-worker SQL scenario."""
    admin = connect()
    cur = admin.cursor()
    for t in (TABLE, OTHER, USERS):
        cur.execute(f"DROP TABLE IF EXISTS {t}")
    cur.execute(f"CREATE TABLE {TABLE} (id int primary key, balance int)")
    cur.execute(f"CREATE TABLE {OTHER} (id int primary key, balance int)")
    cur.execute(f"CREATE TABLE {USERS} (name varchar(40))")

    def setup() -> State:
        c = admin.cursor()
        c.execute(f"DELETE FROM {TABLE}")
        c.execute(f"INSERT INTO {TABLE} VALUES (1, 0), (2, 0)")
        c.execute(f"DELETE FROM {OTHER}")
        c.execute(f"INSERT INTO {OTHER} VALUES (1, 0)")
        c.execute(f"DELETE FROM {USERS}")
        return State([connect(), connect()])

    def lost_update(i: int) -> Callable[[State], None]:
        def work(s: State) -> None:
            cur = s.conns[i].cursor()
            cur.execute(f"SELECT balance FROM {TABLE} WHERE id = 1")
            balance = cur.fetchone()[0]
            cur.execute(f"UPDATE {TABLE} SET balance = %s WHERE id = 1", (balance + 1,))

        return work

    read_query = f"SELECT balance FROM {TABLE} WHERE id = 1"
    write_query = f"UPDATE {TABLE} SET balance = %s WHERE id = 1"

    def lost_update_in_variables(i: int) -> Callable[[State], None]:
        # The statements are not on the lines that run them.
        def work(s: State) -> None:
            cur = s.conns[i].cursor()
            cur.execute(read_query)
            balance = cur.fetchone()[0]
            cur.execute(write_query, (balance + 1,))

        return work

    def atomic(i: int) -> Callable[[State], None]:
        def work(s: State) -> None:
            s.conns[i].cursor().execute(f"UPDATE {TABLE} SET balance = balance + 1 WHERE id = 1")

        return work

    def for_update(i: int) -> Callable[[State], None]:
        def work(s: State) -> None:
            conn = s.conns[i]
            cur = conn.cursor()
            cur.execute("BEGIN")
            cur.execute(f"SELECT balance FROM {TABLE} WHERE id = 1 FOR UPDATE")
            balance = cur.fetchone()[0]
            cur.execute(f"UPDATE {TABLE} SET balance = %s WHERE id = 1", (balance + 1,))
            cur.execute("COMMIT")

        return work

    def for_update_waits(i: int) -> Callable[[State], None]:
        # Worker 1 writes a flag before its transaction, worker 0 reads it
        # inside its own: the search puts worker 1's SELECT ... FOR UPDATE
        # inside worker 0's transaction, where the server makes it wait.
        def work(s: State) -> None:
            conn = s.conns[i]
            cur = conn.cursor()
            if i == 1:
                s.flag = 1
            cur.execute("BEGIN")
            cur.execute(f"SELECT balance FROM {TABLE} WHERE id = 1 FOR UPDATE")
            balance = cur.fetchone()[0]
            if i == 0:
                balance += s.flag * 0
            cur.execute(f"UPDATE {TABLE} SET balance = %s WHERE id = 1", (balance + 1,))
            cur.execute("COMMIT")

        return work

    def for_update_waits_replayed(i: int) -> Callable[[State], None]:
        # for_update_waits, noting what worker 0 read of the flag and the
        # order of the commits.
        def work(s: State) -> None:
            conn = s.conns[i]
            cur = conn.cursor()
            if i == 1:
                s.flag = 1
            cur.execute("BEGIN")
            cur.execute(f"SELECT balance FROM {TABLE} WHERE id = 1 FOR UPDATE")
            balance = cur.fetchone()[0]
            if i == 0:
                s.seen = s.flag
            cur.execute(f"UPDATE {TABLE} SET balance = %s WHERE id = 1", (balance + 1,))
            cur.execute("COMMIT")
            s.order = [*getattr(s, "order", []), i]

        return work

    def waited_for_the_row(s: State) -> bool:
        # False exactly when worker 1 set its flag before worker 0 read it
        # and still committed second: its SELECT ... FOR UPDATE waited on
        # worker 0's row lock. A failure whose replays must follow the lock.
        return not (getattr(s, "seen", 0) == 1 and getattr(s, "order", []) == [0, 1])

    def advisory(i: int) -> Callable[[State], None]:
        # PostgreSQL only: a session-level advisory lock around the update.
        def work(s: State) -> None:
            cur = s.conns[i].cursor()
            cur.execute("SELECT pg_advisory_lock(%s)", (LOCK_ID,))
            cur.execute(f"SELECT balance FROM {TABLE} WHERE id = 1")
            balance = cur.fetchone()[0]
            cur.execute(f"UPDATE {TABLE} SET balance = %s WHERE id = 1", (balance + 1,))
            cur.execute("SELECT pg_advisory_unlock(%s)", (LOCK_ID,))

        return work

    def own_row(i: int) -> Callable[[State], None]:
        def work(s: State) -> None:
            cur = s.conns[i].cursor()
            cur.execute(f"SELECT balance FROM {TABLE} WHERE id = %s", (i + 1,))
            balance = cur.fetchone()[0]
            cur.execute(f"UPDATE {TABLE} SET balance = %s WHERE id = %s", (balance + 1, i + 1))

        return work

    def own_table(i: int) -> Callable[[State], None]:
        table = (TABLE, OTHER)[i]

        def work(s: State) -> None:
            cur = s.conns[i].cursor()
            cur.execute(f"SELECT balance FROM {table} WHERE id = 1")
            balance = cur.fetchone()[0]
            cur.execute(f"UPDATE {table} SET balance = %s WHERE id = 1", (balance + 1,))

        return work

    # Transactions at an isolation level: ``txn_<level>_<shape>``.
    def txn(level: str, shape: str) -> Callable[[int], Callable[[State], None]]:
        def make(i: int) -> Callable[[State], None]:
            table, row = {"row": (TABLE, 1), "rows": (TABLE, i + 1), "tables": ((TABLE, OTHER)[i], 1)}[shape]

            def work(s: State) -> None:
                cur = s.conns[i].cursor()
                begin(cur, level, mysql)
                cur.execute(f"SELECT balance FROM {table} WHERE id = %s", (row,))
                balance = cur.fetchone()[0]
                cur.execute(f"UPDATE {table} SET balance = %s WHERE id = %s", (balance + 1, row))
                cur.execute("COMMIT")

            return work

        return make

    def own_row_own_connection(i: int) -> Callable[[State], None]:
        # Each worker opens (and closes) its own connection.
        def work(s: State) -> None:
            conn = connect()
            try:
                cur = conn.cursor()
                cur.execute(f"SELECT balance FROM {TABLE} WHERE id = %s", (i + 1,))
                balance = cur.fetchone()[0]
                cur.execute(f"UPDATE {TABLE} SET balance = %s WHERE id = %s", (balance + 1, i + 1))
            finally:
                conn.close()

        return work

    def lost_update_own_connection(i: int) -> Callable[[State], None]:
        def work(s: State) -> None:
            conn = connect()
            try:
                cur = conn.cursor()
                cur.execute(f"SELECT balance FROM {TABLE} WHERE id = 1")
                balance = cur.fetchone()[0]
                cur.execute(f"UPDATE {TABLE} SET balance = %s WHERE id = 1", (balance + 1,))
            finally:
                conn.close()

        return work

    def for_update_own_connection(i: int) -> Callable[[State], None]:
        def work(s: State) -> None:
            conn = connect()
            try:
                cur = conn.cursor()
                cur.execute("BEGIN")
                cur.execute(f"SELECT balance FROM {TABLE} WHERE id = 1 FOR UPDATE")
                balance = cur.fetchone()[0]
                cur.execute(f"UPDATE {TABLE} SET balance = %s WHERE id = 1", (balance + 1,))
                cur.execute("COMMIT")
            finally:
                conn.close()

        return work

    seen: list[int] = []

    def late_read(i: int) -> Callable[[State], None]:
        # Worker 0's snapshot is taken by a read of TABLE; it reads OTHER
        # only afterwards. Worker 1 commits to OTHER. Seeing that commit
        # needs worker 1 to commit before worker 0's first statement.
        def reader(s: State) -> None:
            cur = s.conns[0].cursor()
            begin(cur, "REPEATABLE READ", mysql)
            cur.execute(f"SELECT balance FROM {TABLE} WHERE id = 1")
            cur.fetchone()
            cur.execute(f"SELECT balance FROM {OTHER} WHERE id = 1")
            seen.append(cur.fetchone()[0])
            cur.execute("COMMIT")

        def writer(s: State) -> None:
            s.conns[1].cursor().execute(f"UPDATE {OTHER} SET balance = 5 WHERE id = 1")

        return (reader, writer)[i]

    def check_then_insert(i: int) -> Callable[[State], None]:
        def work(s: State) -> None:
            cur = s.conns[i].cursor()
            cur.execute(f"SELECT name FROM {USERS} WHERE name = %s", ("alice",))
            if cur.fetchone() is None:
                cur.execute(f"INSERT INTO {USERS} (name) VALUES (%s)", ("alice",))

        return work

    def total(s: State, table: str) -> int:
        c = admin.cursor()
        c.execute(f"SELECT sum(balance) FROM {table}")
        return int(c.fetchone()[0])

    def close_all(s: State) -> None:
        for conn in s.conns:
            conn.close()

    def counter_is_two(s: State) -> bool:
        close_all(s)
        return total(s, TABLE) == 2

    def both_tables_one(s: State) -> bool:
        close_all(s)
        return total(s, TABLE) == 1 and total(s, OTHER) == 1

    def one_alice(s: State) -> bool:
        close_all(s)
        c = admin.cursor()
        c.execute(f"SELECT count(*) FROM {USERS} WHERE name = 'alice'")
        return int(c.fetchone()[0]) == 1

    def old_value_seen(s: State) -> bool:
        close_all(s)
        return seen.pop() == 0

    def cleanup() -> None:
        c = admin.cursor()
        for t in (TABLE, OTHER, USERS):
            c.execute(f"DROP TABLE IF EXISTS {t}")
        admin.close()

    txns: dict[str, tuple[Callable[[int], Callable[[State], None]], Callable[[State], bool]]] = {}
    for level in ("default", "READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE"):
        name = level.lower().replace(" ", "_")
        txns[f"txn_{name}_row"] = (txn(level, "row"), counter_is_two)
        txns[f"txn_{name}_rows"] = (txn(level, "rows"), counter_is_two)
        txns[f"txn_{name}_tables"] = (txn(level, "tables"), both_tables_one)
    make, invariant = {
        **txns,
        "late_read": (late_read, old_value_seen),
        "rows_connect_in_worker": (own_row_own_connection, counter_is_two),
        "lost_update_connect_in_worker": (lost_update_own_connection, counter_is_two),
        "for_update_connect_in_worker": (for_update_own_connection, counter_is_two),
        "lost_update": (lost_update, counter_is_two),
        "lost_update_in_variables": (lost_update_in_variables, counter_is_two),
        "atomic": (atomic, counter_is_two),
        "for_update": (for_update, counter_is_two),
        "for_update_waits": (for_update_waits, counter_is_two),
        "for_update_waits_replayed": (for_update_waits_replayed, waited_for_the_row),
        "advisory": (advisory, counter_is_two),
        "rows": (own_row, counter_is_two),
        "tables": (own_table, both_tables_one),
        "check_then_insert": (check_then_insert, one_alice),
    }[kind]
    return setup, [make(0), make(1)], invariant, cleanup


# --- Redis --------------------------------------------------------------------


def redis_scenario(kind: str) -> tuple[Any, ...]:
    import redis

    counter, other, flag = f"counter_{TAG}", f"visits_{TAG}", f"init_{TAG}"
    admin = redis.Redis(host="127.0.0.1", port=6379)

    def setup() -> State:
        admin.delete(counter, other, flag)
        admin.set(counter, 0)
        admin.set(other, 0)
        clients = [redis.Redis(host="127.0.0.1", port=6379, single_connection_client=True) for _ in range(2)]
        for r in clients:
            # Connect here: the handshake (CLIENT SETINFO) is not a keyed
            # command and would count as a write to the whole server.
            r.ping()
        return State(clients)

    def get_set(i: int) -> Callable[[State], None]:
        def work(s: State) -> None:
            r = s.conns[i]
            value = int(r.get(counter))
            r.set(counter, value + 1)

        return work

    def incr(i: int) -> Callable[[State], None]:
        def work(s: State) -> None:
            s.conns[i].incr(counter)

        return work

    def own_key(i: int) -> Callable[[State], None]:
        key = (counter, other)[i]

        def work(s: State) -> None:
            r = s.conns[i]
            value = int(r.get(key))
            r.set(key, value + 1)

        return work

    def setnx_init(i: int) -> Callable[[State], None]:
        def work(s: State) -> None:
            r = s.conns[i]
            if r.setnx(flag, i):
                r.incr(counter)

        return work

    incr_script = "return redis.call('INCR', KEYS[1])"
    get_script = "return redis.call('GET', KEYS[1])"

    def eval_vs_get_set(i: int) -> Callable[[State], None]:
        # Worker 0 runs a script on one key, worker 1 a GET/SET on another.
        def script(s: State) -> None:
            s.conns[0].eval(incr_script, 1, counter)

        def plain(s: State) -> None:
            r = s.conns[1]
            r.set(other, int(r.get(other)) + 1)

        return (script, plain)[i]

    def eval_incr(i: int) -> Callable[[State], None]:
        def work(s: State) -> None:
            s.conns[i].eval(incr_script, 1, counter)

        return work

    def eval_get_then_set(i: int) -> Callable[[State], None]:
        def work(s: State) -> None:
            r = s.conns[i]
            value = int(r.eval(get_script, 1, counter))
            r.set(counter, value + 1)

        return work

    def multi_own_key(i: int) -> Callable[[State], None]:
        key = (counter, other)[i]

        def work(s: State) -> None:
            pipe = s.conns[i].pipeline(transaction=True)
            pipe.incr(key)
            pipe.incr(key)
            pipe.execute()

        return work

    def multi_get_then_set(i: int) -> Callable[[State], None]:
        # The read is outside the transaction: still a lost update.
        def work(s: State) -> None:
            r = s.conns[i]
            value = int(r.get(counter))
            pipe = r.pipeline(transaction=True)
            pipe.set(counter, value + 1)
            pipe.execute()

        return work

    def watch_retry(i: int) -> Callable[[State], None]:
        def work(s: State) -> None:
            import redis

            pipe = s.conns[i].pipeline(transaction=True)
            while True:
                try:
                    pipe.watch(counter)
                    value = int(pipe.get(counter))
                    pipe.multi()
                    pipe.set(counter, value + 1)
                    pipe.execute()
                    return
                except redis.WatchError:
                    continue

        return work

    def close_all(s: State) -> None:
        for r in s.conns:
            r.close()

    def counter_is(n: int) -> Callable[[State], bool]:
        def check(s: State) -> bool:
            close_all(s)
            return int(admin.get(counter)) == n

        return check

    def both_one(s: State) -> bool:
        close_all(s)
        return int(admin.get(counter)) == 1 and int(admin.get(other)) == 1

    def both_two(s: State) -> bool:
        close_all(s)
        return int(admin.get(counter)) == 2 and int(admin.get(other)) == 2

    def cleanup() -> None:
        admin.delete(counter, other, flag)
        admin.close()

    make, invariant = {
        "get_set": (get_set, counter_is(2)),
        "incr": (incr, counter_is(2)),
        "keys": (own_key, both_one),
        "setnx": (setnx_init, counter_is(1)),
        "eval_keys": (eval_vs_get_set, both_one),
        "eval_incr": (eval_incr, counter_is(2)),
        "eval_get_set": (eval_get_then_set, counter_is(2)),
        "multi_keys": (multi_own_key, both_two),
        "multi_get_set": (multi_get_then_set, counter_is(2)),
        "watch_retry": (watch_retry, counter_is(2)),
    }[kind]
    return setup, [make(0), make(1)], invariant, cleanup


# --- SQLAlchemy ---------------------------------------------------------------


def sqlalchemy_scenario(kind: str) -> tuple[Any, ...]:
    """SQLAlchemy Core over psycopg2, the engine made in ``setup()`` so that
    its pool fills lazily inside the workers: ``queuepool_<shape>`` or
    ``nullpool_<shape>`` (a new connection per checkout)."""
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool, QueuePool

    pool_name, _, shape = kind.partition("_")
    url = "postgresql+psycopg2://postgres@127.0.0.1:5432/test?sslmode=disable"
    admin = sa.create_engine(url, poolclass=NullPool)
    with admin.begin() as c:
        c.execute(sa.text(f"DROP TABLE IF EXISTS {TABLE}"))
        c.execute(sa.text(f"CREATE TABLE {TABLE} (id int primary key, balance int)"))

    class Engine(State):
        engine: Any

    def setup() -> Engine:
        with admin.begin() as c:
            c.execute(sa.text(f"DELETE FROM {TABLE}"))
            c.execute(sa.text(f"INSERT INTO {TABLE} VALUES (1, 0), (2, 0)"))
        s = Engine([])
        s.engine = sa.create_engine(url, poolclass=QueuePool if pool_name == "queuepool" else NullPool)
        return s

    def make(i: int) -> Callable[[Engine], None]:
        row = {"rows": i + 1, "row": 1}[shape]

        def work(s: Engine) -> None:
            with s.engine.begin() as c:
                balance = c.execute(sa.text(f"SELECT balance FROM {TABLE} WHERE id = {row}")).scalar_one()
                c.execute(sa.text(f"UPDATE {TABLE} SET balance = {balance + 1} WHERE id = {row}"))

        return work

    def counter_is_two(s: Engine) -> bool:
        s.engine.dispose()
        with admin.connect() as c:
            return int(c.execute(sa.text(f"SELECT sum(balance) FROM {TABLE}")).scalar_one()) == 2

    def cleanup() -> None:
        with admin.begin() as c:
            c.execute(sa.text(f"DROP TABLE IF EXISTS {TABLE}"))
        admin.dispose()

    return setup, [make(0), make(1)], counter_is_two, cleanup


# --- Traffic the library cannot read ---------------------------------------


def opaque_scenario(kind: str) -> tuple[Any, ...]:
    """Workers that speak to PostgreSQL in a way the classifier cannot
    read: TLS that does not go through OpenSSL's calls (here a fake record
    after a real SSLRequest), or bytes that are no protocol at all."""
    import socket

    def work(s: State) -> None:
        with socket.create_connection(("127.0.0.1", 5432)) as sock:
            if kind == "tls":
                sock.sendall((8).to_bytes(4, "big") + (80877103).to_bytes(4, "big"))
                assert sock.recv(1) == b"S"
                sock.sendall(b"\x16\x03\x01\x00\x04fake")
            else:
                sock.sendall(b"\x00\x00\x00\x02??")

    return (lambda: State([]), [work, work], lambda s: True, lambda: None)


def main() -> None:
    family, _, kind = SCENARIO.partition(":")
    if family.partition("+")[0] in ("psycopg2", "psycopg"):
        setup, threads, invariant, cleanup = sql_scenario(lambda: pg_connect(family), kind)
    elif family.partition("+")[0] in ("mysqlclient", "pymysql"):
        setup, threads, invariant, cleanup = sql_scenario(lambda: mysql_connect(family), kind, mysql=True)
    elif family == "redis":
        setup, threads, invariant, cleanup = redis_scenario(kind)
    elif family == "sqlalchemy":
        setup, threads, invariant, cleanup = sqlalchemy_scenario(kind)
    elif family == "opaque":
        setup, threads, invariant, cleanup = opaque_scenario(kind)
    else:
        raise SystemExit(f"unknown scenario {SCENARIO}")
    start = time.monotonic()
    try:
        result = frontrun.explore_dpor(setup, threads, invariant, preemption_bound=None, deadlock_timeout=10.0)
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
