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


def test_commit_order_pseudo_tables_are_shown_as_the_table_or_row_they_order() -> None:
    # The preload library orders a transaction's snapshot against commits
    # through `<commits:T>`; a COMMIT writes the row and its commit order,
    # a snapshot statement reads the commit order.
    row, order = "sql:stock#id=1", "sql:<commits:stock>#id=1"
    keys = {1: (None, "io", row), 2: (None, "io", order), 3: (None, "io", "sql:<commits:orders>")}
    steps = [
        (0, CODE, 0, [(2, False)]),
        (1, CODE, 0, [(1, True), (2, True), (3, True)]),
        (0, CODE, 0, [(1, False), (3, False)]),
    ]
    native = [
        [],
        [
            ("send", row, "COMMIT", True),
            ("send", order, "COMMIT", True),
            ("send", "sql:<commits:orders>", "COMMIT", True),
        ],
        [],
    ]
    report = build(
        steps=steps,
        describe=keys.get,
        schedule=[0, 1, 0],
        thread_names=["a", "b"],
        replay="",
        num_explored=1,
        errors={},
        deadlock=None,
        invariant=None,
        native_steps=native,
    )
    shown = [a.label for s in report.steps for a in s.accesses] + [
        e.resource for s in report.steps for e in s.native_events
    ]
    assert not [name for name in shown if "<commits" in name], shown
    by_index = {s.index: s for s in report.steps}
    assert [(a.kind, a.label) for a in by_index[1].accesses] == [("write", row), ("write", "sql:orders")]
    # The row's COMMIT and its commit order were one request: one event.
    assert by_index[1].native_events == (
        NativeEvent("send", row, "COMMIT"),
        NativeEvent("send", "sql:orders", "COMMIT"),
    )
    assert {c.label for c in report.conflicts} == {row, "sql:orders"}
    assert report.classification.endswith(f"on {row}")


def test_the_report_of_an_exploration_under_pytest_names_its_test(tmp_path) -> None:
    from frontrun import explore_dpor

    class Box:
        def __init__(self) -> None:
            self.n = 0

    def bump(box: Box) -> None:
        box.n = box.n + 1

    result = explore_dpor(Box, [bump, bump], lambda b: b.n == 2, detect_io=False, report_dir=tmp_path)
    # The file is named after the pytest node id, read while the test runs.
    node = "tests/plugin/test_report_build.py::test_the_report_of_an_exploration_under_pytest_names_its_test"
    name = node.replace("/", "-").replace("::", "-")
    assert result.report_path is not None
    assert result.report_path.split("/")[-1].startswith(f"frontrun-{name}-lost-update-on-box-n-"), result.report_path


def test_a_row_and_its_commit_order_are_one_race_in_the_text_explanation() -> None:
    from frontrun._explain import explain

    row, order = "sql:stock#id=1", "sql:<commits:stock>#id=1"
    # Which of the two keys the explanation meets first must not matter:
    # both orders of the key numbers give the same text.
    for row_key, order_key in ((1, 2), (2, 1)):
        keys = {row_key: (None, "io", row), order_key: (None, "io", order)}
        steps = [
            (0, CODE, 0, [(order_key, False), (row_key, False)]),  # SELECT, taking the snapshot
            (1, CODE, 0, [(order_key, False), (row_key, False)]),
            (1, CODE, 0, [(row_key, True), (order_key, True)]),  # UPDATE and COMMIT
            (0, CODE, 0, [(order_key, False), (row_key, True)]),  # UPDATE with the stale value
        ]
        text = explain(steps=steps, describe=keys.get, num_explored=1, schedule=[0, 1, 1, 0], errors={})
        conflicts = text.split("Conflicts:\n", 1)[1].split("\n\n", 1)[0].splitlines()
        assert conflicts == [
            f"  lost update on {row}: thread 0 read it, thread 1 wrote it, then thread 0 wrote a value based on its "
            "stale read"
        ], text
        assert "<commits" not in text
