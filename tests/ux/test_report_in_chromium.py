"""The report as a browser shows it: headless Chromium renders the page,
runs its script, and hands back a screenshot or the resulting DOM."""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path

from frontrun._report_html import write_report
from frontrun._report_model import FailureReport
from html_dom import Element, parse
from report_examples import HOSTILE, hostile_report, lost_update_report, wide_report

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


def test_after_the_script_ran_there_is_one_lane_per_thread_and_one_arrow_per_conflict(
    run_chromium, tmp_path: Path
) -> None:
    report = lost_update_report()
    dom = dumped_dom(run_chromium, report, tmp_path)
    assert len(dom.find_all(cls="lane")) == len(report.threads)
    drawn = arrows(dom)
    assert [(a.attrs["data-conflict"], a.attrs["data-from"], a.attrs["data-to"]) for a in drawn] == [
        (str(n), str(c.first), str(c.second)) for n, c in enumerate(report.conflicts)
    ]
    for arrow in drawn:
        assert PATH.match(arrow.attrs["d"]), arrow.attrs["d"]
    assert len(dom.find_all("g", attr="data-conflict-badge")) == len(report.conflicts)


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
