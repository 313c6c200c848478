"""The benchmark workloads, run one sample per fresh process.

    python workloads.py TOOL WORKLOAD N MODE CAP_SECONDS

TOOL is "ours" (this repository's frontrun), "ours_narrow" (the same with
the workload's third-party library left untraced, ``skip_packages``) or
"peer" (PyPI frontrun 0.7.0, in its own venv). MODE is "exhaustive" (full
DPOR, no preemption bound, keep going after failures), "bounded" (the
same within the default preemption bound, 2) or "first" (stop at the
first failure). The library workloads (libraries.py) run "first" with
each tool's default options (replays included) and "exhaustive" on their
safe twins; the peer is given ``trace_packages`` for the library, which it
does not trace by default. Prints one JSON line; a workload this tool
cannot run prints {"unsupported": why} and a crash prints {"error": what}.
The same file runs under both tools, so both explore the very same code.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import os
import resource
import sys
import threading
import time
import traceback
from typing import Any

import libraries

# --- shared-memory workloads -------------------------------------------------


class Counter:
    def __init__(self) -> None:
        self.value = 0


def increment(c: Counter) -> None:
    tmp = c.value
    c.value = tmp + 1


class Shared:
    def __init__(self) -> None:
        self.x = 0


def writer(s: Shared) -> None:
    s.x = 1


def reader(s: Shared) -> None:
    _ = s.x


class Array:
    def __init__(self, n: int) -> None:
        self.a = [0] * (n + 1)


def make_scanner(n: int) -> Any:
    def scan(s: Array) -> None:
        i = n
        while s.a[i] != 0:
            i -= 1

    return scan


def make_lastzero_writer(j: int) -> Any:
    def write(s: Array) -> None:
        s.a[j] = s.a[j - 1] + 1

    return write


class Objects:
    def __init__(self, n: int) -> None:
        self.objs = [Counter() for _ in range(n)]


def make_own_incrementer(i: int, rounds: int) -> Any:
    def work(state: Objects) -> None:
        obj = state.objs[i]
        for _ in range(rounds):
            obj.value = obj.value + 1

    return work


class LockedCounter:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.value = 0


def locked_increment(c: LockedCounter) -> None:
    with c.lock:
        tmp = c.value
        c.value = tmp + 1


class AsyncCounter:
    def __init__(self) -> None:
        self.value = 0
        self.lock = asyncio.Lock()


async def async_increment(c: AsyncCounter) -> None:
    tmp = c.value
    await asyncio.sleep(0)
    c.value = tmp + 1


async def async_locked_increment(c: AsyncCounter) -> None:
    async with c.lock:
        tmp = c.value
        await asyncio.sleep(0)
        c.value = tmp + 1


def make_async_gatherer(n: int) -> Any:
    async def gather_increments(c: AsyncCounter) -> None:
        await asyncio.gather(*(async_increment(c) for _ in range(n)))

    return gather_increments


class TwoLocks:
    def __init__(self) -> None:
        self.a = threading.Lock()
        self.b = threading.Lock()


def a_then_b(s: TwoLocks) -> None:
    with s.a:
        with s.b:
            pass


def b_then_a(s: TwoLocks) -> None:
    with s.b:
        with s.a:
            pass


def sleepy_increment(c: Counter) -> None:
    tmp = c.value
    time.sleep(SLEEP_S)
    c.value = tmp + 1


def sleepy_locked_increment(c: LockedCounter) -> None:
    with c.lock:
        tmp = c.value
        time.sleep(SLEEP_S)
        c.value = tmp + 1


#: How long each worker of the sleep workloads sleeps, between its read and
#: its write.
SLEEP_S = 0.01


# --- PostgreSQL workloads (run under LD_PRELOAD) ------------------------------

PG_DSN = os.environ.get("FRONTRUN_BENCH_PG_DSN", "host=127.0.0.1 port=5432 dbname=test user=postgres sslmode=disable")
TABLE = f"frontrun_bench_{os.getpid()}"


#: The same server with TLS required (the ``pg_tls_`` workloads).
PG_TLS_DSN = PG_DSN.replace("sslmode=disable", "sslmode=require")


def pg_connect(dsn: str) -> Any:
    import psycopg2

    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    return conn


class Accounts:
    """Fresh balances for one execution and one open connection per client,
    as a test would set them up (none with ``in_workers``: each client
    connects itself); the admin connection checks the outcome."""

    def __init__(self, clients: int, dsn: str = PG_DSN, in_workers: bool = False) -> None:
        self.admin = pg_connect(PG_DSN)
        with self.admin.cursor() as cur:
            cur.execute(f"UPDATE {TABLE} SET balance = 0")
        self.dsn = dsn
        self.conns = [] if in_workers else [pg_connect(dsn) for _ in range(clients)]

    def balances(self) -> list[int]:
        for conn in self.conns:
            conn.close()
        with self.admin.cursor() as cur:
            cur.execute(f"SELECT balance FROM {TABLE} ORDER BY id")
            values = [row[0] for row in cur.fetchall()]
        self.admin.close()
        return values


def make_deposit(client: int, row: int, isolation: str | None = None) -> Any:
    """SELECT then UPDATE one row, in autocommit or in a transaction at
    ``isolation``; on the client's own connection, or one it opens."""

    def deposit(accounts: Accounts) -> None:
        own = not accounts.conns
        conn = pg_connect(accounts.dsn) if own else accounts.conns[client]
        try:
            with conn.cursor() as cur:
                if isolation is not None:
                    cur.execute(f"BEGIN ISOLATION LEVEL {isolation}")
                cur.execute(f"SELECT balance FROM {TABLE} WHERE id = %s", (row,))
                (balance,) = cur.fetchone()
                cur.execute(f"UPDATE {TABLE} SET balance = %s WHERE id = %s", (balance + 1, row))
                if isolation is not None:
                    cur.execute("COMMIT")
        finally:
            if own:
                conn.close()

    return deposit


def create_table(rows: int) -> None:
    import psycopg2

    conn = psycopg2.connect(PG_DSN)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {TABLE}")
        cur.execute(f"CREATE TABLE {TABLE} (id int PRIMARY KEY, balance int NOT NULL)")
        for i in range(1, rows + 1):
            cur.execute(f"INSERT INTO {TABLE} VALUES (%s, 0)", (i,))
    conn.close()


def drop_table() -> None:
    import psycopg2

    conn = psycopg2.connect(PG_DSN)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {TABLE}")
    conn.close()


# --- the catalogue -------------------------------------------------------------


def workload(name: str, n: int) -> tuple[Any, list[Any], Any]:
    """setup, threads, invariant for one workload point."""
    if name == "counter":
        return Counter, [increment] * n, lambda c: c.value == n
    if name == "readers":
        return Shared, [writer] + [reader] * n, lambda s: True
    if name == "lastzero":
        threads = [make_scanner(n)] + [make_lastzero_writer(j) for j in range(1, n + 1)]
        return (lambda: Array(n)), threads, lambda s: True
    if name == "independent":
        return (lambda: Objects(n)), [make_own_incrementer(i, 50) for i in range(n)], lambda s: True
    if name == "independent_marginal":
        # Against "independent" with the same N, gives the marginal cost of
        # a traced instruction, free of per-exploration fixed costs.
        return (lambda: Objects(n)), [make_own_incrementer(i, 500) for i in range(n)], lambda s: True
    if name == "locked_counter":
        return LockedCounter, [locked_increment] * n, lambda c: c.value == n
    if name == "abba":
        return TwoLocks, [a_then_b, b_then_a], lambda s: True
    if name == "pg_lost_update":
        return (lambda: Accounts(n)), [make_deposit(i, 1) for i in range(n)], lambda a: a.balances()[0] == n
    if name == "pg_different_rows":
        threads = [make_deposit(i, i + 1) for i in range(n)]
        return (lambda: Accounts(n)), threads, lambda a: a.balances() == [1] * n
    if name == "pg_tls_lost_update":
        threads = [make_deposit(i, 1) for i in range(n)]
        return (lambda: Accounts(n, PG_TLS_DSN)), threads, lambda a: a.balances()[0] == n
    if name == "pg_tls_different_rows":
        threads = [make_deposit(i, i + 1) for i in range(n)]
        return (lambda: Accounts(n, PG_TLS_DSN)), threads, lambda a: a.balances() == [1] * n
    if name == "pg_repeatable_read_rows":
        threads = [make_deposit(i, i + 1, "REPEATABLE READ") for i in range(n)]
        return (lambda: Accounts(n)), threads, lambda a: a.balances() == [1] * n
    if name == "pg_connect_in_worker_rows":
        threads = [make_deposit(i, i + 1) for i in range(n)]
        return (lambda: Accounts(n, in_workers=True)), threads, lambda a: a.balances() == [1] * n
    if name == "sleepy_counter":
        return Counter, [sleepy_increment] * n, lambda c: c.value == n
    if name == "sleepy_locked_counter":
        return LockedCounter, [sleepy_locked_increment] * n, lambda c: c.value == n
    if name == "async_counter":
        return AsyncCounter, [async_increment] * n, lambda c: c.value == n
    if name == "async_locked_counter":
        return AsyncCounter, [async_locked_increment] * n, lambda c: c.value == n
    if name == "async_gather_counter":
        # One task gathers the N increments: tasks a task creates.
        return AsyncCounter, [make_async_gatherer(n)], lambda c: c.value == n
    if libraries.is_library_workload(name):
        return libraries.workload(name, n)
    raise SystemExit(f"unknown workload {name}")


def unsupported(tool: str, name: str) -> str | None:
    """Why this tool cannot run this workload, when that is known up front."""
    if tool == "peer":
        return None
    if name in ("locked_counter", "abba", "sleepy_locked_counter"):
        import importlib.util

        if importlib.util.find_spec("frontrun._coop") is None:
            return (
                "no cooperative locks in this build (frontrun._coop): a real threading.Lock "
                "contended under the scheduler is not modelled"
            )
    return None


def count_instructions(setup: Any, threads: list[Any]) -> int:
    """Instructions the thread bodies execute when run serially."""
    count = 0
    here = os.path.abspath(__file__)

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        nonlocal count
        if frame.f_code.co_filename != here:
            return None
        frame.f_trace_opcodes = True
        if event == "opcode":
            count += 1
        return tracer

    state = setup()
    for fn in threads:
        sys.settrace(tracer)
        try:
            fn(state)
        finally:
            sys.settrace(None)
    return count


def peak_rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def options(tool: str, name: str, mode: str, cap: float) -> dict[str, Any]:
    """The exploration's keyword arguments for this tool, workload and mode."""
    if mode not in ("exhaustive", "bounded", "first"):
        raise SystemExit(f"unknown mode {mode}")
    kwargs: dict[str, Any] = {"total_timeout": cap}
    if libraries.is_library_workload(name):
        # Both tools' defaults for the first failure (preemption bound 2,
        # stop at the first failure, 10 replays, I/O detection on); full
        # DPOR on the safe twin.
        if mode != "first":
            kwargs.update(preemption_bound=None, stop_on_first=False, reproduce_on_failure=0, max_executions=None)
        if tool == "peer":
            kwargs["trace_packages"] = libraries.patterns(name)
        elif tool == "ours_narrow":
            kwargs["skip_packages"] = libraries.patterns(name)
        return kwargs
    if tool == "ours_narrow":
        raise SystemExit(f"{name} calls no third-party library: nothing to leave untraced")
    kwargs.update(
        preemption_bound=2 if mode == "bounded" else None,
        stop_on_first=mode == "first",
        detect_io=name.startswith("pg_"),
        reproduce_on_failure=0,
        max_executions=None,
    )
    return kwargs


def run(tool: str, name: str, n: int, mode: str, cap: float) -> dict[str, Any]:
    why = unsupported(tool, name)
    if why is not None:
        return {"unsupported": why}
    setup, threads, invariant = workload(name, n)
    kwargs = options(tool, name, mode, cap)
    if name.startswith("pg_"):
        create_table(n)
    if libraries.is_library_workload(name):
        libraries.prepare(name)
    if tool == "peer":
        os.environ["FRONTRUN_ACTIVE"] = "1"
    elif tool not in ("ours", "ours_narrow"):
        raise SystemExit(f"unknown tool {tool}")
    import frontrun

    # Resolved before the clock starts: both packages import their explorer
    # lazily, and with PYTHONDONTWRITEBYTECODE (or a read-only tree) that
    # import compiles source, which is not exploration time.
    if tool != "peer":
        explore = frontrun.explore_async if name.startswith("async_") else frontrun.explore_dpor
    else:
        explore = functools.partial(frontrun.explore, strategy="dpor")
    rss_before = peak_rss_kib()
    try:
        start = time.perf_counter()
        result = explore(setup, threads, invariant, **kwargs)
        if inspect.isawaitable(result):
            # 0.7.0's explore of coroutine functions is itself a coroutine.
            result = asyncio.run(result)
        elapsed = time.perf_counter() - start
    finally:
        if name.startswith("pg_"):
            drop_table()
    record: dict[str, Any] = {
        "executions": result.num_explored,
        "seconds": elapsed,
        "property_holds": result.property_holds,
        "failures": len(getattr(result, "failures", None) or []) or (0 if result.property_holds else 1),
        "exhausted": getattr(result, "exhausted", None),
        "deadlock": bool(getattr(result, "deadlock", None)),
        "peak_rss_kib_before": rss_before,
        "peak_rss_kib": peak_rss_kib(),
    }
    inconclusive = list(getattr(result, "inconclusive", None) or [])
    if inconclusive:
        record["inconclusive"] = len(inconclusive)
        record["inconclusive_reason"] = str(inconclusive[0])[:300]
    for field in ("native_events", "events_lost"):
        if hasattr(result, field):
            record[field] = getattr(result, field)
    if name.startswith("independent"):
        record["instructions"] = count_instructions(setup, threads)
    return record


def main() -> None:
    tool, name, n, mode, cap = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], float(sys.argv[5])
    try:
        record = run(tool, name, n, mode, cap)
    except BaseException as exc:  # reported to the driver, not raised
        record = {"error": f"{type(exc).__name__}: {exc}".strip()[:500], "traceback": traceback.format_exc()[-2000:]}
    sys.stdout.flush()
    print(json.dumps(record, default=str))


if __name__ == "__main__":
    main()
