"""Failure reports for the report tests: ordinary, hostile and wide."""

from __future__ import annotations

from frontrun._report_model import Access, Conflict, FailureReport, NativeEvent, Step, Thread

PG = "socket:127.0.0.1:5432"


def lost_update_report() -> FailureReport:
    """Two threads, a lost update on a Python attribute and an SQL write."""
    f = "/srv/app/counter.py"
    return FailureReport(
        title="AssertionError: counter.value == 2, got 1",
        classification="lost update on Counter.value",
        replay="frontrun.replay([0, 1, 1, 0], setup, [bump, bump], invariant)",
        threads=(Thread(0, "bump"), Thread(1, "bump")),
        steps=(
            Step(0, 0, f, 10, "tmp = self.value", (Access("read", "Counter.value"),), (), "increment"),
            Step(1, 1, f, 10, "tmp = self.value", (Access("read", "Counter.value"),), (), "increment"),
            Step(
                2,
                1,
                f,
                11,
                "self.value = tmp + 1; cur.execute(SAVE)",
                (Access("write", "Counter.value"), Access("write", PG, is_io=True)),
                (NativeEvent("send", PG, "UPDATE counters SET value = 1"), NativeEvent("recv", PG)),
                "increment",
            ),
            Step(
                3,
                0,
                f,
                11,
                "self.value = tmp + 1; cur.execute(SAVE)",
                (Access("write", "Counter.value"), Access("write", PG, is_io=True)),
                (NativeEvent("send", PG, "UPDATE counters SET value = 1"),),
                "increment",
            ),
        ),
        conflicts=(
            Conflict(0, 2, "Counter.value", "read-write"),
            Conflict(2, 3, "Counter.value", "write-write"),
            Conflict(2, 3, PG, "write-write"),
        ),
        explanation="thread 0 read Counter.value, thread 1 wrote it, then thread 0 wrote a stale value",
        executions=2,
        schedule=(0, 1, 1, 0),
    )


HOSTILE = """if a < b and c > "d" or e == 'f': </pre></script><script>document.title='pwned'</script> &amp;"""


def hostile_report() -> FailureReport:
    """Markup and quotes in every text field the model has."""
    return FailureReport(
        title='<img src=x onerror="alert(1)"> & "quotes"',
        classification="check-then-act on dict['<k>']",
        replay="frontrun.replay([0, 1], setup, [f, g], lambda s: s['\"x\"'] < 3)",
        threads=(Thread(0, "<b>bold</b>"), Thread(1, "a & b")),
        steps=(
            Step(0, 0, "/tmp/<odd>.py", 1, HOSTILE, (Access("read", "dict['<k>']"),), (), "<lambda>"),
            Step(
                1,
                1,
                '/tmp/"quoted".py',
                2,
                HOSTILE,
                (Access("write", "dict['<k>']"),),
                (NativeEvent("send", "file:/tmp/<x>", "</pre><script>1</script>"),),
            ),
        ),
        conflicts=(Conflict(0, 1, "dict['<k>']", "read-write"),),
        explanation="</details><script>alert(2)</script>",
    )


def wide_report(threads: int = 4) -> FailureReport:
    """Conflicts between non-adjacent lanes, in both directions."""
    steps = tuple(
        Step(i, i % threads, "/srv/app/pool.py", 20 + i, f"slots[{i % 2}] = me", (Access("write", "Pool.slots"),))
        for i in range(2 * threads)
    )
    conflicts = tuple(Conflict(i, i + 1, "Pool.slots", "write-write") for i in range(2 * threads - 1))
    conflicts += (Conflict(0, 2 * threads - 1, "Pool.slots", "write-write"),)
    return FailureReport(
        title="AssertionError: pool has duplicates",
        classification="write-write on Pool.slots",
        replay="frontrun.replay(...)",
        threads=tuple(Thread(t) for t in range(threads)),
        steps=steps,
        conflicts=conflicts,
    )


LONG_FILE = "src/shop/inventory/reservations/backends/postgresql/transactional_reservation_store.py"


def crowded_report() -> FailureReport:
    """Arrows that would share their middle: steps 0, 1, 2 of thread 0
    conflict with steps 5, 4, 3 of thread 1 (nested arrows between the same
    two lanes, whose midpoints coincide when the boxes are alike), one pair
    on several locations, a run of thread 1's steps all reached from step
    2, thread 2 joining in from the far lane, and long package paths."""
    site = "/venv/lib/python3.12/site-packages/"

    def step(index: int, thread: int, line: int, *accesses: Access) -> Step:
        return Step(index, thread, site + LONG_FILE, line, "store.save(order)", accesses, (), "save", LONG_FILE)

    w, r = "write", "read"
    steps = (
        step(0, 0, 10, Access(w, "Store.stock")),
        step(1, 0, 11, Access(w, "Store.orders")),
        step(2, 0, 12, Access(w, "Store.reserved"), Access(w, "Store.total")),
        step(3, 1, 20, Access(r, "Store.reserved"), Access(r, "Store.total")),
        step(4, 1, 21, Access(r, "Store.orders"), Access(r, "Store.reserved")),
        step(5, 1, 22, Access(r, "Store.stock"), Access(r, "Store.reserved")),
        step(6, 1, 23, Access(r, "Store.reserved")),
        step(7, 2, 30, Access(w, "Store.stock"), Access(w, "Store.reserved")),
    )
    conflicts = (
        Conflict(0, 5, "Store.stock", "write-read"),
        Conflict(1, 4, "Store.orders", "write-read"),
        Conflict(2, 3, "Store.reserved", "write-read"),
        Conflict(2, 3, "Store.total", "write-read"),
        Conflict(2, 4, "Store.reserved", "write-read"),
        Conflict(2, 5, "Store.reserved", "write-read"),
        Conflict(2, 6, "Store.reserved", "write-read"),
        Conflict(0, 7, "Store.stock", "write-write"),
        Conflict(5, 7, "Store.stock", "read-write"),
        Conflict(6, 7, "Store.reserved", "read-write"),
    )
    return FailureReport(
        title="AssertionError: stock and orders disagree",
        classification="write-read on Store.stock",
        replay='@frontrun.reproduce("fr1.aiaagafambca")',
        threads=(Thread(0, "save"), Thread(1, "view"), Thread(2, "reserve")),
        steps=steps,
        conflicts=conflicts,
        schedule=(0, 0, 0, 1, 1, 1, 1, 2),
    )
