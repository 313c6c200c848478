"""HTML reports written by real explorations (``report_dir=``): what the
explorer puts in the model, and the page as a browser renders it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from frontrun import explore_dpor, replay
from html_dom import parse
from test_report_in_chromium import arrows, png_size_and_pixels


class Counter:
    def __init__(self) -> None:
        self.value = 0

    def increment(self) -> None:
        current = self.value
        self.value = current + 1


def lost_update(tmp_path: Path):
    return explore_dpor(
        Counter,
        [Counter.increment, Counter.increment],
        lambda c: c.value == 2,
        detect_io=False,
        report_dir=tmp_path / "reports",
    )


def test_a_failing_exploration_writes_one_page_and_names_it_in_the_explanation(tmp_path: Path) -> None:
    result = lost_update(tmp_path)
    pages = list((tmp_path / "reports").iterdir())
    assert [str(p) for p in pages] == [result.report_path]
    assert result.explanation.splitlines()[-1] == f"HTML report: {result.report_path}"


def test_report_dir_must_be_a_path() -> None:
    with pytest.raises(TypeError, match="report_dir must be a directory path, got int"):
        explore_dpor(Counter, [Counter.increment], lambda c: True, detect_io=False, report_dir=3)


def test_a_passing_exploration_writes_nothing(tmp_path: Path) -> None:
    result = explore_dpor(
        Counter, [Counter.increment], lambda c: c.value == 1, detect_io=False, report_dir=tmp_path / "reports"
    )
    assert result.property_holds and result.report_path is None
    assert not (tmp_path / "reports").exists()


def test_the_page_shows_the_failing_steps_their_lines_and_the_conflicts(tmp_path: Path) -> None:
    result = lost_update(tmp_path)
    dom = parse(Path(result.report_path).read_text(encoding="utf-8"))
    assert [lane.attrs["data-lane"] for lane in dom.find_all(cls="lane")] == ["0", "1"]
    steps = {int(s.attrs["data-step"]): s for s in dom.find_all(attr="data-step") if "step" in s.classes}
    # The schedule is 0,1,1,0: each thread reads, then writes.
    assert result.counterexample == [0, 1, 1, 0]
    assert sorted(steps) == [0, 1, 2, 3]
    assert [steps[i].attrs["data-thread"] for i in range(4)] == ["0", "1", "1", "0"]
    sources = [steps[i].find_all("pre", cls="source")[0].text() for i in range(4)]
    assert sources == ["current = self.value", "current = self.value"] + ["self.value = current + 1"] * 2
    line = Counter.increment.__code__.co_firstlineno
    assert f"test_report_from_exploration.py:{line + 1}" in steps[0].text()
    # Each conflict joins a step to the latest earlier step of another
    # thread on the same location: thread 1's write after thread 0's read,
    # then thread 0's write after thread 1's.
    items = dom.find_all("li", cls="conflict-item")
    assert [(i.attrs["data-from"], i.attrs["data-to"]) for i in items] == [("0", "2"), ("2", "3")]
    assert [i.find_all(cls="kind")[0].text() for i in items] == ["read-write", "write-write"]
    assert "lost update on Counter.value" in dom.find_all(cls="classification")[0].text()
    token = re.search(r'@frontrun\.reproduce\("(fr1\.[a-z2-7]+)"\)', result.explanation).group(1)
    assert dom.find_all("code")[0].text() == f'@frontrun.reproduce("{token}")'
    assert replay(token, Counter, [Counter.increment] * 2, lambda c: c.value == 2).failed


def test_a_thread_that_raises_is_the_title(tmp_path: Path) -> None:
    def check_then_fail(c: Counter) -> None:
        seen = c.value
        c.value = seen + 1
        if c.value != seen + 1:
            raise RuntimeError(f"value moved under us: {c.value}")

    result = explore_dpor(Counter, [check_then_fail] * 2, lambda c: True, detect_io=False, report_dir=tmp_path)
    assert not result.property_holds
    dom = parse(Path(result.report_path).read_text(encoding="utf-8"))
    title = dom.find_all("h1")[0].text()
    assert re.fullmatch(r"Thread [01] raised RuntimeError: value moved under us: \d", title), title


def test_chromium_draws_one_arrow_per_conflict_of_the_real_report(run_chromium, tmp_path: Path) -> None:
    result = lost_update(tmp_path)
    page = Path(result.report_path)
    dom = parse(run_chromium(page, "--dump-dom").stdout)
    drawn = arrows(dom)
    assert [(a.attrs["data-from"], a.attrs["data-to"]) for a in drawn] == [("0", "2"), ("2", "3")]
    png = tmp_path / "shot.png"
    run_chromium(page, f"--screenshot={png}", "--window-size=1200,800")
    width, height, pixels = png_size_and_pixels(png.read_bytes())
    assert (width, height) == (1200, 800)
    assert len(set(pixels)) > 64


def test_a_deadlock_is_the_title_of_its_report(tmp_path: Path) -> None:
    import threading

    class Pair:
        def __init__(self) -> None:
            # Built by setup() during the exploration, when threading.Lock
            # is the cooperative lock.
            self.a = threading.Lock()
            self.b = threading.Lock()

    def a_then_b(p: Pair) -> None:
        with p.a, p.b:
            pass

    def b_then_a(p: Pair) -> None:
        with p.b, p.a:
            pass

    result = explore_dpor(Pair, [a_then_b, b_then_a], lambda p: True, detect_io=False, report_dir=tmp_path)
    assert result.deadlock is not None
    dom = parse(Path(result.report_path).read_text(encoding="utf-8"))
    title = dom.find_all("h1")[0].text()
    assert title == f"Deadlock: {result.deadlock.describe()}".splitlines()[0], title
    assert title.startswith("Deadlock: lock-ordering cycle: ")
