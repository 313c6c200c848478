"""Race hunts run by ``scripts/demo``: each explores a small concurrent
program with frontrun and prints what it found. Nothing here is canned: every
line of output comes from an exploration run now."""

from __future__ import annotations

import sys
import time

from frontrun import explore_dpor


class Account:
    def __init__(self) -> None:
        self.balance = 100


def withdraw(account: Account) -> None:
    if account.balance >= 80:
        account.balance -= 80


class Counter:
    def __init__(self) -> None:
        self.value = 0

    def increment(self) -> None:
        current = self.value
        self.value = current + 1


class Registry:
    def __init__(self) -> None:
        self.users: dict[str, int] = {}
        self.next_id = 0

    def register(self, name: str) -> None:
        if name not in self.users:
            self.next_id += 1
            self.users[name] = self.next_id


HUNTS = [
    (
        "lost update: two threads increment a counter",
        dict(
            setup=Counter,
            threads=[lambda c: c.increment(), lambda c: c.increment()],
            invariant=lambda c: c.value == 2,
        ),
    ),
    (
        "check-then-act: two withdrawals of 80 from a balance of 100",
        dict(
            setup=Account,
            threads=[withdraw, withdraw],
            invariant=lambda a: a.balance >= 0,
        ),
    ),
    (
        "check-then-insert: two threads register the same user",
        dict(
            setup=Registry,
            threads=[lambda r: r.register("ada"), lambda r: r.register("ada")],
            invariant=lambda r: r.next_id == len(r.users),
        ),
    ),
    (
        "no race: each thread updates its own counter",
        dict(
            setup=lambda: [Counter(), Counter(), Counter()],
            threads=[lambda cs, i=i: cs[i].increment() for i in range(3)],
            invariant=lambda cs: all(c.value == 1 for c in cs),
            preemption_bound=None,
            stop_on_first=False,
        ),
    ),
]


PG_DSN = "host=127.0.0.1 port=5432 dbname=test user=postgres sslmode=disable"


def database_hunt() -> bool:
    """Two workers read a balance from PostgreSQL through psycopg2 (libpq,
    C) and write back the value plus one. Runs in a process with the preload
    library loaded: only the libc layer sees the queries. True if a race was
    found."""
    import uuid

    import psycopg2

    table = f"demo_accounts_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(PG_DSN)
    admin.autocommit = True
    admin.cursor().execute(f"CREATE TABLE {table} (id int PRIMARY KEY, balance int)")

    def setup() -> list:
        admin.cursor().execute(f"DELETE FROM {table}; INSERT INTO {table} VALUES (1, 100)")
        conns = [psycopg2.connect(PG_DSN) for _ in range(2)]
        for conn in conns:
            conn.autocommit = True
        return conns

    def deposit(i: int):
        def work(conns: list) -> None:
            cur = conns[i].cursor()
            cur.execute(f"SELECT balance FROM {table} WHERE id = 1")
            (balance,) = cur.fetchone()
            cur.execute(f"UPDATE {table} SET balance = %s WHERE id = 1", (balance + 1,))

        return work

    def both_deposits_kept(conns: list) -> bool:
        for conn in conns:
            conn.close()
        cur = admin.cursor()
        cur.execute(f"SELECT balance FROM {table} WHERE id = 1")
        return cur.fetchone()[0] == 102

    print("=== lost update in PostgreSQL: two psycopg2 workers read a balance, then write it back plus one")
    started = time.perf_counter()
    try:
        result = explore_dpor(setup, [deposit(0), deposit(1)], both_deposits_kept)
    finally:
        admin.cursor().execute(f"DROP TABLE IF EXISTS {table}")
        admin.close()
    elapsed = time.perf_counter() - started
    verdict = "invariant holds" if result.property_holds else "RACE FOUND"
    print(f"{verdict} after {result.num_explored} execution(s) in {elapsed:.3f}s")
    print(f"({result.native_events} C-level events seen through libfrontrun_io.so, {result.events_lost} lost)")
    if not result.property_holds:
        print(result.explanation)
    print()
    return not result.property_holds


def run_database_hunt() -> bool:
    """Runs ``database_hunt`` in a child process under the preload library."""
    import os
    import subprocess

    from frontrun import preload_path

    env = dict(os.environ, LD_PRELOAD=preload_path())
    env.pop("FRONTRUN_RING", None)
    child = subprocess.run([sys.executable, __file__, "--database"], env=env)
    return child.returncode == 0


def main() -> int:
    if sys.argv[1:] == ["--database"]:
        return 0 if database_hunt() else 1
    found = 0
    for title, kwargs in HUNTS:
        print(f"=== {title}")
        started = time.perf_counter()
        result = explore_dpor(detect_io=False, **kwargs)
        elapsed = time.perf_counter() - started
        verdict = "invariant holds" if result.property_holds else "RACE FOUND"
        print(f"{verdict} after {result.num_explored} execution(s) in {elapsed:.3f}s")
        if not result.property_holds:
            found += 1
            print(result.explanation)
        print()
    if run_database_hunt():
        found += 1
    print(f"{found} of {len(HUNTS) + 1} hunts found a race.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
