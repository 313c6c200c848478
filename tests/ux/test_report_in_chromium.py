"""The report as a browser shows it: headless Chromium renders the page,
runs its script, and hands back a screenshot or the resulting DOM."""

from __future__ import annotations

import itertools
import math
import re
import struct
import zlib
from pathlib import Path

import pytest
from frontrun._report_html import write_report
from frontrun._report_model import FailureReport
from html_dom import Element, parse
from report_examples import HOSTILE, LONG_FILE, crowded_report, hostile_report, lost_update_report, wide_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NUMBER = r"(-?\d+(?:\.\d+)?)"
PATH = re.compile(rf"M{NUMBER},{NUMBER} C{NUMBER},{NUMBER} {NUMBER},{NUMBER} {NUMBER},{NUMBER}$")


def png_size_and_pixels(data: bytes) -> tuple[int, int, bytes]:
    assert data[:8] == PNG_SIGNATURE
    width, height = struct.unpack(">II", data[16:24])
    chunks, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        if kind == b"IDAT":
            chunks.append(data[pos + 8 : pos + 8 + length])
        pos += 12 + length
    return width, height, zlib.decompress(b"".join(chunks))


def dumped_dom(run_chromium, report: FailureReport, tmp_path: Path) -> Element:
    page = write_report(report, tmp_path)
    return parse(run_chromium(page, "--dump-dom").stdout)


def arrows(dom: Element) -> list[Element]:
    return [e for e in dom.find_all("path") if "data-conflict" in e.attrs]


def test_chromium_renders_the_report_to_a_screenshot_with_content(run_chromium, tmp_path: Path) -> None:
    page = write_report(lost_update_report(), tmp_path / "report")
    png = tmp_path / "shot.png"
    run_chromium(page, f"--screenshot={png}", "--window-size=1400,900")
    width, height, pixels = png_size_and_pixels(png.read_bytes())
    assert (width, height) == (1400, 900)
    # A blank page compresses to a handful of distinct bytes; text, boxes
    # and colours give many.
    assert len(set(pixels)) > 64


def test_after_the_script_ran_there_is_one_lane_per_thread_and_one_arrow_per_pair_of_steps(
    run_chromium, tmp_path: Path
) -> None:
    report = lost_update_report()
    dom = dumped_dom(run_chromium, report, tmp_path)
    assert len(dom.find_all(cls="lane")) == len(report.threads)
    drawn = arrows(dom)
    # Steps 2 and 3 conflict on Counter.value and on the socket: one arrow.
    pairs = list(dict.fromkeys((c.first, c.second) for c in report.conflicts))
    assert pairs == [(0, 2), (2, 3)]
    assert [(a.attrs["data-conflict"], a.attrs["data-from"], a.attrs["data-to"]) for a in drawn] == [
        (str(n), str(first), str(second)) for n, (first, second) in enumerate(pairs)
    ]
    for arrow in drawn:
        assert PATH.match(arrow.attrs["d"]), arrow.attrs["d"]
    badges = dom.find_all("g", attr="data-conflict-badge")
    assert [b.find_all("text")[0].text() for b in badges] == ["1", "2"]
    # The badge's tooltip lists the conflicts its arrow stands for.
    assert badges[1].find_all("title")[0].text() == "Counter.value write-write; socket:127.0.0.1:5432 write-write"


def test_arrows_run_from_the_earlier_step_toward_the_other_threads_lane(run_chromium, tmp_path: Path) -> None:
    # Lanes are laid out left to right by thread, and time flows down: an
    # arrow from a lower-numbered thread's step goes right, the other way
    # goes left, and every arrow goes down.
    report = wide_report(4)
    dom = dumped_dom(run_chromium, report, tmp_path)
    drawn = arrows(dom)
    assert len(drawn) == len(report.conflicts)
    thread_of = {s.index: s.thread for s in report.steps}
    for arrow, conflict in zip(drawn, report.conflicts, strict=True):
        x1, y1, _, _, _, _, x2, y2 = map(float, PATH.match(arrow.attrs["d"]).groups())
        if thread_of[conflict.first] < thread_of[conflict.second]:
            assert x1 < x2, (conflict, arrow.attrs["d"])
        else:
            assert x1 > x2, (conflict, arrow.attrs["d"])
        assert y1 < y2, (conflict, arrow.attrs["d"])


def test_markup_in_the_model_stays_text_in_the_browser(run_chromium, tmp_path: Path) -> None:
    report = hostile_report()
    dom = dumped_dom(run_chromium, report, tmp_path)
    # Had any text escaped into markup, its script would have renamed the
    # page or added elements.
    assert dom.find_all("title")[0].text() == f"frontrun: {report.title}"
    assert len(dom.find_all("script")) == 1
    assert dom.find_all("img") == []
    assert [p.text() for p in dom.find_all("pre", cls="source")] == [HOSTILE, HOSTILE]
    assert len(arrows(dom)) == 1


#: Appended to a copy of the page: once the page's own script has drawn
#: the arrows, write where the browser put each box and lane, so that the
#: dumped DOM carries the layout.
PROBE = """<script>
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll(".step, .lane").forEach(function (node) {
    var r = node.getBoundingClientRect();
    node.setAttribute("data-rect", [r.left, r.top, r.right, r.bottom].join(","));
  });
});
</script>
"""


def laid_out(run_chromium, report: FailureReport, tmp_path: Path, width: int) -> Element:
    """The DOM of ``report`` rendered in a window ``width`` pixels wide, with
    a screenshot beside the page (``report-<width>.png``) for a person to
    look at."""
    page = write_report(report, tmp_path / f"page-{width}")
    png = tmp_path / f"report-{width}.png"
    run_chromium(page, f"--screenshot={png}", f"--window-size={width},1400")
    _, _, pixels = png_size_and_pixels(png.read_bytes())
    assert len(set(pixels)) > 64
    probed = page.with_name("probed.html")
    probed.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
    return parse(run_chromium(probed, "--dump-dom", f"--window-size={width},1400").stdout)


def rect(element: Element) -> tuple[float, ...]:
    return tuple(map(float, element.attrs["data-rect"].split(",")))


@pytest.mark.parametrize("width", [800, 1400])
def test_crowded_arrows_get_one_badge_each_and_no_badge_covers_another(
    run_chromium, tmp_path: Path, width: int
) -> None:
    report = crowded_report()
    dom = laid_out(run_chromium, report, tmp_path, width)
    pairs = list(dict.fromkeys((c.first, c.second) for c in report.conflicts))
    drawn = arrows(dom)
    assert [(int(a.attrs["data-from"]), int(a.attrs["data-to"])) for a in drawn] == pairs
    circles = [b.find_all("circle")[0] for b in dom.find_all("g", attr="data-conflict-badge")]
    assert len(circles) == len(pairs)
    spots = [(float(c.attrs["cx"]), float(c.attrs["cy"]), float(c.attrs["r"])) for c in circles]
    for i, (x1, y1, r1) in enumerate(spots):
        for j, (x2, y2, r2) in enumerate(spots[:i]):
            assert math.hypot(x1 - x2, y1 - y2) >= r1 + r2, (width, i + 1, j + 1, spots)


@pytest.mark.parametrize("width", [800, 1400])
def test_long_package_paths_stay_inside_their_box_and_lane(run_chromium, tmp_path: Path, width: int) -> None:
    report = crowded_report()
    dom = laid_out(run_chromium, report, tmp_path, width)
    lanes = {int(e.attrs["data-lane"]): rect(e) for e in dom.find_all(cls="lane")}
    boxes = [e for e in dom.find_all(cls="step") if "data-rect" in e.attrs]
    assert len(boxes) == len(report.steps)
    for box in boxes:
        left, _, right, _ = rect(box)
        lane_left, _, lane_right, _ = lanes[int(box.attrs["data-thread"])]
        assert lane_left <= left and right <= lane_right, (width, box.attrs["data-step"], rect(box), lanes)
    # The lanes themselves stay apart, however long the paths in them.
    ordered = [lanes[t] for t in sorted(lanes)]
    for a, b in itertools.pairwise(ordered):
        assert a[2] < b[0], (width, ordered)
    where = next(b for b in boxes if b.attrs["data-step"] == "0").find_all(cls="where")[0]
    assert f"{LONG_FILE}:10" in where.text()
