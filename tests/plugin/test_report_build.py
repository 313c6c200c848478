"""The report model the explorer builds from a session's step records,
including C-level accesses and database keys, checked on hand-made records
(the real ones need the preload library and a server)."""

from __future__ import annotations

from frontrun._report_build import build
from frontrun._report_model import NativeEvent


def save(conn) -> None:
    conn.execute("UPDATE stock SET n = n - 1")


CODE = save.__code__
ROW = "postgresql:127.0.0.1:5432/stock"
# Two engine keys standing for the same row (as a database access expands),
# and a Python attribute.
DESCRIBE = {1: (None, "io", ROW), 2: (None, "io", ROW), 3: (object(), "attr", "n")}


def describe(key: int):
    return DESCRIBE.get(key)


def test_native_accesses_land_on_their_step_and_duplicate_row_keys_show_once() -> None:
    steps = [
        (0, CODE, 0, [(3, False)]),
        (1, CODE, 0, [(1, True), (2, False)]),
        (0, CODE, 0, [(1, True), (2, True)]),
        (1, CODE, 0, []),
    ]
    native = [
        [],
        [("send", ROW, "UPDATE stock SET n = n - 1", True)],
        [("send", ROW, "UPDATE stock SET n = n - 1", True)],
        [("recv", "socket:127.0.0.1:5432", "", False)],
    ]
    report = build(
        steps=steps,
        describe=describe,
        schedule=[0, 1, 0, 1],
        thread_names=["a", "b"],
        replay='@frontrun.reproduce("x")',
        num_explored=3,
        errors={},
        deadlock=None,
        invariant=None,
        native_steps=native,
    )
    by_index = {s.index: s for s in report.steps}
    # Step 0 touches only an attribute nobody else touches; step 3 did
    # native I/O, so it is shown although it touched no conflicting key.
    assert sorted(by_index) == [1, 2, 3]
    assert [(a.kind, a.label, a.is_io) for a in by_index[1].accesses] == [("write", ROW, True)]
    assert by_index[2].native_events == (NativeEvent("send", ROW, "UPDATE stock SET n = n - 1"),)
    assert by_index[3].native_events == (NativeEvent("recv", "socket:127.0.0.1:5432", ""),)
    assert by_index[3].thread == 1
    assert [(c.first, c.second, c.label, c.kind) for c in report.conflicts] == [(1, 2, ROW, "write-write")]
    assert report.classification == f"write-write on {ROW}"
    assert report.title == "Invariant violated"
    assert report.executions == 3 and report.schedule == (0, 1, 0, 1)


def test_arrows_already_implied_by_the_order_of_each_thread_are_left_out() -> None:
    attr = {7: (object(), "attr", "x")}
    steps = [
        (0, CODE, 0, [(7, True)]),
        (1, CODE, 0, [(7, False)]),
        (1, CODE, 0, [(7, False)]),
        (1, CODE, 0, [(7, False)]),
        (0, CODE, 0, [(7, True)]),
    ]
    report = build(
        steps=steps,
        describe=attr.get,
        schedule=[0, 1, 1, 1, 0],
        thread_names=[],
        replay="",
        num_explored=1,
        errors={},
        deadlock=None,
        invariant=None,
    )
    # Thread 1's reads at steps 2 and 3 come after step 1's, which already
    # follows the write at step 0; the write at step 4 follows all three.
    assert [(c.first, c.second, c.kind) for c in report.conflicts] == [(0, 1, "write-read"), (3, 4, "read-write")]
    assert [t.name for t in report.threads] == ["thread 0", "thread 1"]
