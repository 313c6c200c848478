"""The failure report model and the page rendered from it (no browser)."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
from frontrun._report_html import render_report, report_file_name, write_report
from frontrun._report_model import Access, Conflict, FailureReport, Step
from html_dom import parse
from report_examples import HOSTILE, hostile_report, lost_update_report, wide_report


@pytest.mark.parametrize("build", [lost_update_report, hostile_report, wide_report])
def test_a_report_survives_a_round_trip_through_json(build) -> None:
    report = build()
    assert FailureReport.from_dict(json.loads(json.dumps(report.to_dict()))) == report


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"conflicts": (Conflict(0, 9, "x", "write-write"),)}, "conflict 0 refers to step 9, which is not in steps"),
        ({"conflicts": (Conflict(2, 0, "x", "write-read"),)}, "conflict 0: first step 2 does not come before 0"),
        ({"steps": (Step(0, 5, "f.py", 1),)}, "step 0 belongs to thread 5, which is not in threads"),
        ({"steps": (Step(0, 0, "f.py", 1), Step(0, 1, "f.py", 2))}, "step index 0 appears twice"),
        ({"steps": (Step(0, 0, "f.py", 1, "", (Access("modify", "x"),)),)}, "step 0: access kind 'modify'"),
    ],
)
def test_an_inconsistent_report_is_refused_with_the_reason(change: dict, message: str) -> None:
    base = dataclasses.replace(lost_update_report(), conflicts=())
    with pytest.raises(ValueError, match=re.escape(message)):
        render_report(dataclasses.replace(base, **change))


def test_the_page_has_one_lane_per_thread_and_one_box_per_step() -> None:
    report = wide_report(5)
    dom = parse(render_report(report))
    assert [e.attrs["data-lane"] for e in dom.find_all(cls="lane")] == [str(t.id) for t in report.threads]
    boxes = dom.find_all(cls="step")
    assert [(b.attrs["data-step"], b.attrs["data-thread"]) for b in boxes] == [
        (str(s.index), str(s.thread)) for s in report.steps
    ]


def test_each_box_shows_its_file_line_and_source_line() -> None:
    report = lost_update_report()
    dom = parse(render_report(report))
    for box, step in zip(dom.find_all(cls="step"), report.steps, strict=True):
        assert f"counter.py:{step.line}" in box.find_all(cls="where")[0].text()
        assert box.find_all(cls="where")[0].attrs["title"] == f"{step.file}:{step.line}"
        assert box.find_all("pre", cls="source")[0].text() == step.source


def test_only_the_accesses_in_a_conflict_are_highlighted() -> None:
    dom = parse(render_report(lost_update_report()))
    chips = {b.attrs["data-step"]: b.find_all(cls="access") for b in dom.find_all(cls="step")}
    # Step 1's read is not part of any conflict; step 0's read is (conflict 1).
    assert [a.classes for a in chips["1"]] == [{"access", "read"}]
    assert "hot" in chips["0"][0].classes
    assert [n.text() for n in chips["0"][0].find_all(cls="num")] == ["1"]
    # Step 2 writes both locations; each chip carries the numbers of the
    # arrows its location is on: the two conflicts of steps 2 and 3 (on
    # Counter.value and on the socket) are one arrow, number 2.
    assert [[n.text() for n in c.find_all(cls="num")] for c in chips["2"]] == [["1", "2"], ["2"]]
    assert [[n.text() for n in c.find_all(cls="num")] for c in chips["3"]] == [["2"], ["2"]]
    assert {b.attrs["data-step"] for b in dom.find_all(cls="conflicting")} == {"0", "2", "3"}


def test_native_events_sit_in_the_box_of_the_step_that_made_them() -> None:
    dom = parse(render_report(lost_update_report()))
    events = {
        b.attrs["data-step"]: [" ".join(e.text().split()) for e in b.find_all(cls="native-event")]
        for b in dom.find_all(cls="step")
    }
    assert events == {
        "0": [],
        "1": [],
        "2": ["send socket:127.0.0.1:5432UPDATE counters SET value = 1", "recv socket:127.0.0.1:5432"],
        "3": ["send socket:127.0.0.1:5432UPDATE counters SET value = 1"],
    }


def test_the_header_has_the_failure_the_classification_and_the_replay_line() -> None:
    report = lost_update_report()
    dom = parse(render_report(report))
    assert dom.find_all("h1")[0].text() == report.title
    assert dom.find_all(cls="classification")[0].text() == report.classification
    assert dom.find_all("code")[0].text() == report.replay
    assert "found after 2 executions" in dom.find_all(cls="meta")[0].text()


def test_lost_native_events_are_announced() -> None:
    report = dataclasses.replace(lost_update_report(), events_lost=17)
    warning = parse(render_report(report)).find_all(cls="warning")
    assert len(warning) == 1
    assert warning[0].text().startswith("17 native events were lost")
    assert parse(render_report(lost_update_report())).find_all(cls="warning") == []


def test_every_text_from_the_model_is_escaped() -> None:
    report = hostile_report()
    dom = parse(render_report(report))
    assert len(dom.find_all("script")) == 1
    assert dom.find_all("img") == []
    assert dom.find_all("b") == []
    assert dom.find_all("h1")[0].text() == report.title
    assert [p.text() for p in dom.find_all("pre", cls="source")] == [HOSTILE, HOSTILE]
    assert [e.text() for e in dom.find_all(cls="lane-head")] == ["Thread 0 · <b>bold</b>", "Thread 1 · a & b"]
    assert dom.find_all(cls="detail")[0].text() == "</pre><script>1</script>"
    assert dom.find_all("details")[0].find_all("pre")[0].text() == report.explanation
    assert dom.find_all(cls="where")[1].attrs["title"] == '/tmp/"quoted".py:2'


def test_the_page_loads_nothing_from_anywhere_else() -> None:
    page = render_report(lost_update_report())
    dom = parse(page)
    csp = [m for m in dom.find_all("meta") if m.attrs.get("http-equiv") == "Content-Security-Policy"]
    assert len(csp) == 1
    assert csp[0].attrs["content"].startswith("default-src 'none';")
    assert dom.find_all("link") == []
    assert [e for e in dom.iter() if "src" in e.attrs or "href" in e.attrs] == []
    # The one url() is the arrowhead marker, defined in the page itself.
    assert set(re.findall(r"url\(([^)]*)\)", page)) == {"#head"}
    assert "@import" not in page


def test_writing_a_report_creates_the_directory_and_a_complete_page(tmp_path: Path) -> None:
    report = lost_update_report()
    target = write_report(report, tmp_path / "reports" / "nested")
    assert target.parent == tmp_path / "reports" / "nested"
    assert target.name == report_file_name(report)
    assert target.name.startswith("frontrun-lost-update-on-counter-value-")
    assert target.suffix == ".html"
    assert target.read_text(encoding="utf-8") == render_report(report)
    assert [p.name for p in target.parent.iterdir()] == [target.name]


def test_each_failure_gets_its_own_file_and_the_same_failure_the_same_file(tmp_path: Path) -> None:
    first = lost_update_report()
    other = dataclasses.replace(first, replay="frontrun.replay([1, 0, 0, 1], setup, [bump, bump], invariant)")
    a = write_report(first, tmp_path)
    b = write_report(other, tmp_path)
    again = write_report(first, tmp_path)
    assert a != b
    assert again == a
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([a.name, b.name])


def test_an_inconsistent_report_writes_nothing(tmp_path: Path) -> None:
    broken = dataclasses.replace(lost_update_report(), conflicts=(Conflict(0, 42, "x", "write-write"),))
    with pytest.raises(ValueError, match="step 42"):
        write_report(broken, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_conflicts_that_join_the_same_two_steps_are_one_numbered_item_listing_them() -> None:
    dom = parse(render_report(lost_update_report()))
    items = dom.find_all("li", cls="conflict-item")
    assert [(i.attrs["data-from"], i.attrs["data-to"]) for i in items] == [("0", "2"), ("2", "3")]
    assert [i.find_all(cls="num")[0].text() for i in items] == ["1", "2"]
    listed = [
        [
            (loc.find_all(cls="label")[0].text(), loc.find_all(cls="kind")[0].text())
            for loc in i.find_all(cls="location")
        ]
        for i in items
    ]
    assert listed == [
        [("Counter.value", "read-write")],
        [("Counter.value", "write-write"), ("socket:127.0.0.1:5432", "write-write")],
    ]
    assert items[1].attrs["data-summary"] == "Counter.value write-write; socket:127.0.0.1:5432 write-write"


def test_a_box_shows_the_file_as_the_explanation_names_it_and_the_full_path_on_hover() -> None:
    base = lost_update_report()
    step = dataclasses.replace(
        base.steps[0], file="/venv/lib/site-packages/shop/__init__.py", display_file="shop/__init__.py"
    )
    report = dataclasses.replace(base, steps=(step, *base.steps[1:]))
    where = parse(render_report(report)).find_all(cls="where")[0]
    assert "shop/__init__.py:10" in where.text()
    assert where.attrs["title"] == "/venv/lib/site-packages/shop/__init__.py:10"


def test_the_test_that_failed_is_in_the_header_and_in_the_file_name(tmp_path: Path) -> None:
    node = "tests/shop/test_stock.py::test_sold_once[psycopg2-2]"
    report = dataclasses.replace(lost_update_report(), test=node)
    assert parse(render_report(report)).find_all(cls="nodeid")[0].text() == node
    name = report_file_name(report)
    assert name.startswith("frontrun-tests-shop-test_stock.py-test_sold_once-psycopg2-2-lost-update-on-counter-value-")
    assert write_report(report, tmp_path).name == name
    # Without a test (outside pytest) the name starts with the race.
    assert report_file_name(lost_update_report()).startswith("frontrun-lost-update-on-counter-value-")


def test_a_long_node_id_keeps_the_test_name_and_the_file_name_short() -> None:
    node = "/".join(["deeply"] * 30) + "/test_x.py::TestClass::test_" + "y" * 60
    name = report_file_name(dataclasses.replace(lost_update_report(), test=node))
    assert name.startswith("frontrun-test_x.py-TestClass-test_yyyy")
    assert len(name) < 200
    node = "tests/test_x.py::test_" + "z" * 300
    name = report_file_name(dataclasses.replace(lost_update_report(), test=node))
    assert name.startswith("frontrun-test_zzzz") and len(name) < 200
