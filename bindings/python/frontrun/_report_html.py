"""A failing execution as one self-contained HTML page.

The text explanation says which accesses conflicted; this page shows it: one
lane per thread, time flowing downward, each step a box at its source line,
and an arrow from each conflicting step to the step of the other thread it
raced with. Native events (socket I/O, SQL) sit in the box of the step whose
thread performed them.

The page must open from a CI artifact or a mail attachment with no network,
so everything is inline: CSS, a short script that draws the arrows once the
browser has laid the boxes out (text wraps differently on every screen, so
the arrows cannot be placed in advance), and a Content-Security-Policy that
forbids loading anything else. Without the script the page still lists the
conflicts in words; only the arrows are missing.

Every piece of text from the model goes through :func:`html.escape`: source
lines routinely contain ``<``, ``&`` and quotes.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path

from frontrun._report_model import Conflict, FailureReport, NativeEvent, Step, Thread

__all__ = ["render_report", "report_file_name", "write_report"]


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _thread_name(thread: Thread) -> str:
    return f"Thread {thread.id}" + (f" · {thread.name}" if thread.name else "")


def _where(step: Step) -> str:
    return f"{step.display_file or os.path.basename(step.file) or '?'}:{step.line}"


#: Conflicts that join the same two steps, drawn as one arrow:
#: ``(first step, second step, the conflicts)``.
Link = tuple[int, int, list[Conflict]]


def _links(conflicts: Iterable[Conflict]) -> list[Link]:
    """The model's conflicts grouped by the pair of steps they join, in the
    order of their first conflict: several locations touched by the same
    two steps (an attribute and the row it is saved to, a table and its
    commit) make one arrow with one number, not overlapping ones."""
    grouped: dict[tuple[int, int], list[Conflict]] = {}
    for conflict in conflicts:
        grouped.setdefault((conflict.first, conflict.second), []).append(conflict)
    return [(first, second, group) for (first, second), group in grouped.items()]


def _conflict_sentence(n: int, link: Link, steps: dict[int, Step]) -> str:
    first_index, second_index, group = link
    first, second = steps[first_index], steps[second_index]
    summary = "; ".join(f"{c.label} {c.kind}" for c in group)
    locations = ", ".join(
        f'<span class="location"><span class="label">{_e(c.label)}</span> <span class="kind">{_e(c.kind)}</span></span>'
        for c in group
    )
    return (
        f'<li class="conflict-item" data-conflict-item="{n}" data-from="{first_index}" '
        f'data-to="{second_index}" data-summary="{_e(summary)}">'
        f'<span class="num">{n + 1}</span> {locations}: '
        f"step {first_index} (thread {first.thread}, "
        f'<span class="mono">{_e(_where(first))}</span>) then '
        f"step {second_index} (thread {second.thread}, "
        f'<span class="mono">{_e(_where(second))}</span>)</li>'
    )


def _native(events: Iterable[NativeEvent]) -> str:
    items = []
    for event in events:
        detail = f'<pre class="detail">{_e(event.detail)}</pre>' if event.detail else ""
        items.append(
            f'<li class="native-event"><span class="call">{_e(event.call)}</span> '
            f'<span class="resource">{_e(event.resource)}</span>{detail}</li>'
        )
    if not items:
        return ""
    return '<ul class="native" title="seen in native code by libfrontrun_io.so">' + "".join(items) + "</ul>"


def _step_box(step: Step, column: int, row: int, hot: dict[int, dict[str, list[int]]]) -> str:
    hot_labels = hot.get(step.index, {})
    chips = []
    for access in step.accesses:
        numbers = hot_labels.get(access.label, [])
        classes = ["access", access.kind]
        if access.is_io:
            classes.append("io")
        tag = ""
        if numbers:
            classes.append("hot")
            tag = "".join(f'<span class="num">{n + 1}</span>' for n in numbers)
        chips.append(f'<li class="{" ".join(classes)}">{_e(access.kind)} {_e(access.label)}{tag}</li>')
    accesses = f'<ul class="accesses">{"".join(chips)}</ul>' if chips else ""
    function = f' <span class="fn">in {_e(step.function)}</span>' if step.function else ""
    source = _e(step.source) if step.source else '<span class="missing">(source not available)</span>'
    box_classes = "step conflicting" if hot_labels else "step"
    return (
        f'<div class="{box_classes}" id="step-{step.index}" data-step="{step.index}" data-thread="{step.thread}" '
        f'style="grid-column:{column};grid-row:{row}">'
        f'<div class="where" title="{_e(step.file)}:{step.line}"><span class="index">step {step.index}</span> '
        f'<span class="mono">{_e(_where(step))}</span>{function}</div>'
        f'<pre class="source">{source}</pre>{accesses}{_native(step.native_events)}</div>'
    )


def render_report(report: FailureReport) -> str:
    """The whole page, as a string. Raises ``ValueError`` for an inconsistent model."""
    report.validate()
    steps = {step.index: step for step in report.steps}
    ordered = sorted(report.steps, key=lambda s: s.index)
    column_of = {thread.id: 2 + i for i, thread in enumerate(report.threads)}
    row_of = {step.index: 2 + i for i, step in enumerate(ordered)}
    last_row = 2 + len(ordered)

    links = _links(report.conflicts)
    # step index -> access label -> numbers of the arrows it takes part in
    hot: dict[int, dict[str, list[int]]] = {}
    for n, (first, second, group) in enumerate(links):
        for end in (first, second):
            for conflict in group:
                numbers = hot.setdefault(end, {}).setdefault(conflict.label, [])
                if n not in numbers:
                    numbers.append(n)

    lanes = "".join(
        f'<div class="lane" data-lane="{thread.id}" style="grid-column:{column_of[thread.id]};'
        f'grid-row:1 / {last_row}"></div>'
        f'<div class="lane-head" style="grid-column:{column_of[thread.id]};grid-row:1">{_e(_thread_name(thread))}'
        "</div>"
        for thread in report.threads
    )
    ticks = "".join(
        f'<div class="tick" style="grid-column:1;grid-row:{row_of[s.index]}">{s.index}</div>' for s in ordered
    )
    boxes = "".join(_step_box(s, column_of[s.thread], row_of[s.index], hot) for s in ordered)

    meta = [_count(len(report.threads), "thread"), _count(len(report.conflicts), "conflict")]
    if report.executions is not None:
        meta.insert(0, f"found after {_count(report.executions, 'execution')}")
    if report.schedule:
        meta.append(f"schedule of {_count(len(report.schedule), 'step')}")
    lost = ""
    if report.events_lost:
        lost = (
            f'<p class="warning">{report.events_lost} native events were lost because the event ring was full; '
            "the native part of this picture is incomplete.</p>"
        )
    conflict_list = (
        '<ol class="conflicts">' + "".join(_conflict_sentence(n, link, steps) for n, link in enumerate(links)) + "</ol>"
        if report.conflicts
        else '<p class="none">No two steps of different threads touched the same location with a write.</p>'
    )
    test = f'<p class="test">in <span class="mono nodeid">{_e(report.test)}</span></p>' if report.test else ""
    explanation = (
        f'<details class="explanation"><summary>Full explanation</summary><pre>{_e(report.explanation)}</pre></details>'
        if report.explanation
        else ""
    )
    columns = f"2.5rem repeat({max(len(report.threads), 1)}, minmax(15rem, 34rem))"

    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; \
script-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="frontrun">
<title>frontrun: {_e(report.title)}</title>
<style>{_CSS}</style>
</head>
<body>
<header class="failure">
<p class="kicker">frontrun found a race</p>
<h1>{_e(report.title)}</h1>
<p class="classification">{_e(report.classification)}</p>
<p class="meta">{_e(" · ".join(meta))}</p>
{test}
{lost}
<div class="replay"><span class="replay-label">Replay</span><code id="replay-line">{_e(report.replay)}</code>\
<button type="button" id="copy-replay">copy</button></div>
</header>
<main>
<section>
<h2>Conflicting accesses</h2>
{conflict_list}
{explanation}
</section>
<section class="timeline-section">
<h2>Timeline <span class="hint">time flows down; arrows join the steps of each conflict</span></h2>
<div class="timeline" id="timeline">
<div class="grid" style="grid-template-columns:{columns}">
{lanes}{ticks}{boxes}
</div>
<svg class="arrows" id="arrows" xmlns="http://www.w3.org/2000/svg" aria-hidden="true">
<defs><marker id="head" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" \
orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="head"></path></marker></defs>
</svg>
<noscript><p class="none">Arrows need JavaScript; the list above names every conflict.</p></noscript>
</div>
</section>
</main>
<script>{_JS}</script>
</body>
</html>
"""


#: Most characters of the test's node id in a report's file name, so that
#: names stay well under the file systems' 255 bytes.
NODE_ID_IN_NAME = 100


def _test_slug(node_id: str) -> str:
    """The node id in a file name: whole when short enough, else without
    the test file's directories, else the test's name alone (cut)."""
    file, _, name = node_id.partition("::")
    for text in (node_id, f"{os.path.basename(file)}::{name}" if name else os.path.basename(file), name or file):
        slug = re.sub(r"[^A-Za-z0-9_.]+", "-", text).strip("-.")
        if len(slug) <= NODE_ID_IN_NAME:
            return slug
    return slug[:NODE_ID_IN_NAME].strip("-.")


def report_file_name(report: FailureReport) -> str:
    """``frontrun-[<test>-]<what>-<digest>.html``: the test's node id when the
    report has one (``tests-test_stock.py-test_sold_once``), then the race;
    the digest covers the whole model, so two different failures never
    share a name and writing the same failure twice gives the same file."""
    digest = hashlib.sha256(json.dumps(report.to_dict(), sort_keys=True).encode()).hexdigest()[:12]
    slug = re.sub(r"[^a-z0-9]+", "-", report.classification.lower()).strip("-")[:40].strip("-") or "failure"
    test = _test_slug(report.test) if report.test else ""
    return f"frontrun-{test + '-' if test else ''}{slug}-{digest}.html"


def write_report(report: FailureReport, directory: str | os.PathLike[str]) -> Path:
    """Render ``report`` into ``directory`` (created if needed); return the file.

    The file appears complete or not at all (written aside, then renamed), so
    a reader never sees half a page.
    """
    page = render_report(report)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / report_file_name(report)
    fd, temporary = tempfile.mkstemp(prefix=".frontrun-", suffix=".html.part", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(page)
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        os.unlink(temporary)
        raise
    return target


_CSS = """
:root {
  --ink: #1d2330; --muted: #5d6677; --line: #d8dde6; --paper: #ffffff; --lane: #f5f7fa;
  --read: #1f6feb; --write: #c2410c; --hot: #d1242f; --native: #6d28d9;
  --mono: "DejaVu Sans Mono", "SFMono-Regular", Menlo, Consolas, monospace;
}
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif;
  color: var(--ink); background: var(--paper); }
.mono, code, pre { font-family: var(--mono); }
header.failure { padding: 1.2rem 2rem 1rem; background: #fff5f5; border-bottom: 1px solid #f1c4c4;
  border-left: 6px solid var(--hot); }
.kicker { margin: 0; text-transform: uppercase; letter-spacing: .08em; font-size: .75rem; color: var(--hot);
  font-weight: 700; }
h1 { margin: .2rem 0 .3rem; font-size: 1.35rem; font-family: var(--mono); font-weight: 600;
  overflow-wrap: anywhere; }
.classification { margin: 0; font-size: 1.05rem; font-weight: 600; }
.meta { margin: .2rem 0 .6rem; color: var(--muted); font-size: .9rem; }
.test { margin: -.4rem 0 .6rem; color: var(--muted); font-size: .9rem; overflow-wrap: anywhere; }
.warning { margin: .4rem 0; padding: .4rem .6rem; background: #fff3cd; border: 1px solid #e7c75f;
  border-radius: 4px; }
.replay { display: flex; align-items: center; gap: .6rem; background: #1d2330; color: #e8ecf3;
  border-radius: 6px; padding: .45rem .6rem; max-width: 100%; }
.replay-label { font-size: .75rem; text-transform: uppercase; letter-spacing: .06em; color: #9aa6ba; }
.replay code { flex: 1; overflow-x: auto; white-space: pre; font-size: .85rem; }
.replay button { font: inherit; font-size: .8rem; padding: .15rem .6rem; border-radius: 4px;
  border: 1px solid #56607a; background: #2c3446; color: #e8ecf3; cursor: pointer; }
main { padding: .4rem 2rem 2rem; }
h2 { font-size: 1.05rem; margin: 1.1rem 0 .5rem; }
h2 .hint { font-weight: 400; color: var(--muted); font-size: .85rem; margin-left: .5rem; }
ol.conflicts { list-style: none; padding: 0; margin: 0; }
.conflict-item { padding: .3rem .5rem; border-radius: 4px; cursor: default; }
.conflict-item:hover, .conflict-item.focus { background: #fdecec; }
.conflict-item .label { font-family: var(--mono); font-weight: 600; }
.conflict-item .kind { color: var(--hot); font-weight: 600; }
.num { display: inline-block; min-width: 1.25rem; height: 1.25rem; padding: 0 .3rem; border-radius: .65rem;
  background: var(--hot); color: #fff; font-size: .72rem; font-weight: 700; text-align: center;
  line-height: 1.25rem; font-family: system-ui, sans-serif; margin-left: .25rem; }
.conflict-item > .num { margin: 0 .3rem 0 0; }
.none { color: var(--muted); }
details.explanation { margin-top: .6rem; }
details.explanation pre { background: var(--lane); padding: .7rem; border-radius: 4px; overflow-x: auto;
  font-size: .8rem; }
.timeline { position: relative; overflow-x: auto; padding-bottom: .5rem; }
.grid { display: grid; column-gap: 6rem; row-gap: .7rem; position: relative; }
.lane { background: var(--lane); border-radius: 8px; z-index: 0; margin: 0 -1.2rem; }
.lane-head { z-index: 1; font-weight: 700; padding: .5rem .2rem .2rem; position: sticky; top: 0; }
.tick { z-index: 1; color: var(--muted); font-family: var(--mono); font-size: .8rem; text-align: right;
  padding-top: .55rem; }
.step { z-index: 1; position: relative; background: #fff; border: 1px solid var(--line); border-radius: 6px;
  padding: .4rem .6rem .5rem; box-shadow: 0 1px 2px rgba(20, 30, 50, .06); min-width: 0; }
.step.conflicting { border: 2px solid var(--hot); }
.step.focus { box-shadow: 0 0 0 4px rgba(209, 36, 47, .25); }
.where { font-size: .78rem; color: var(--muted); }
.where .index { font-weight: 700; color: var(--ink); margin-right: .3rem; }
.where .fn { font-style: italic; }
.where .mono, .conflict-item .mono { overflow-wrap: anywhere; }
pre.source { margin: .25rem 0 .3rem; font-size: .85rem; white-space: pre-wrap; overflow-wrap: anywhere; }
.missing { color: var(--muted); font-style: italic; }
ul.accesses, ul.native { list-style: none; margin: 0; padding: 0; display: flex; flex-wrap: wrap; gap: .3rem; }
.access { font-family: var(--mono); font-size: .75rem; padding: .05rem .4rem; border-radius: 3px;
  border: 1px solid currentColor; }
.access.read { color: var(--read); }
.access.write { color: var(--write); }
.access.io::before { content: "io "; font-weight: 700; }
.access.hot { background: var(--hot); border-color: var(--hot); color: #fff; font-weight: 700; }
.access.hot .num { background: #fff; color: var(--hot); }
ul.native { margin-top: .35rem; flex-direction: column; gap: .2rem; }
.native-event { border-left: 3px solid var(--native); background: #f5f1ff; padding: .15rem .45rem;
  font-size: .78rem; font-family: var(--mono); border-radius: 0 3px 3px 0; }
.native-event .call { color: var(--native); font-weight: 700; }
.native-event pre.detail { margin: .15rem 0 0; white-space: pre-wrap; overflow-wrap: anywhere; color: #3b3355; }
svg.arrows { position: absolute; left: 0; top: 0; pointer-events: none; overflow: visible; z-index: 2; }
svg.arrows .halo { fill: none; stroke: #fff; stroke-width: 7; opacity: .9; }
svg.arrows .arrow { fill: none; stroke: var(--hot); stroke-width: 2.2; opacity: .85; }
svg.arrows .arrow.focus { stroke-width: 4; opacity: 1; }
svg.arrows .head { fill: var(--hot); }
svg.arrows .badge circle { fill: #fff; stroke: var(--hot); stroke-width: 2; }
svg.arrows .badge text { fill: var(--hot); font: 700 11px system-ui, "DejaVu Sans", sans-serif;
  text-anchor: middle; dominant-baseline: central; }
"""

_JS = """
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";
  function el(name, attrs) {
    var node = document.createElementNS(SVG, name);
    for (var k in attrs) node.setAttribute(k, attrs[k]);
    return node;
  }
  function draw() {
    var timeline = document.getElementById("timeline");
    var svg = document.getElementById("arrows");
    if (!timeline || !svg) return;
    Array.prototype.forEach.call(svg.querySelectorAll("[data-drawn]"), function (n) { n.remove(); });
    var origin = timeline.getBoundingClientRect();
    svg.setAttribute("width", timeline.scrollWidth);
    svg.setAttribute("height", timeline.scrollHeight);
    var items = document.querySelectorAll("[data-conflict-item]");
    var used = {};
    // Badges already placed in this drawing, as [x, y, r]: each new one
    // slides along its arrow (then sideways) until it covers none of them.
    var placed = [];
    var badges = [];
    function bezier(p0, p1, p2, p3, t) {
      var u = 1 - t;
      return u * u * u * p0 + 3 * u * u * t * p1 + 3 * u * t * t * p2 + t * t * t * p3;
    }
    function free(x, y, r) {
      for (var i = 0; i < placed.length; i++) {
        var gx = placed[i][0] - x, gy = placed[i][1] - y, min = placed[i][2] + r + 2;
        if (gx * gx + gy * gy < min * min) return false;
      }
      return true;
    }
    function place(x1, c1, c2, x2, y1, y2, n) {
      var r = String(Number(n) + 1).length > 2 ? 13 : 10;
      var ts = [0.5, 0.4, 0.6, 0.3, 0.7, 0.22, 0.78, 0.15, 0.85];
      for (var i = 0; i < ts.length; i++) {
        var x = bezier(x1, c1, c2, x2, ts[i]), y = bezier(y1, y1, y2, y2, ts[i]);
        if (free(x, y, r)) { placed.push([x, y, r]); return [x, y, r]; }
      }
      var mx = bezier(x1, c1, c2, x2, 0.5), my = (y1 + y2) / 2;
      for (var k = 1; ; k++) {
        var side = (k % 2 ? 1 : -1) * Math.ceil(k / 2) * (2 * r + 3);
        if (free(mx + side, my, r)) { placed.push([mx + side, my, r]); return [mx + side, my, r]; }
      }
    }
    Array.prototype.forEach.call(items, function (item) {
      var n = item.getAttribute("data-conflict-item");
      var from = document.getElementById("step-" + item.getAttribute("data-from"));
      var to = document.getElementById("step-" + item.getAttribute("data-to"));
      if (!from || !to) return;
      var a = from.getBoundingClientRect(), b = to.getBoundingClientRect();
      var dx = timeline.scrollLeft - origin.left, dy = timeline.scrollTop - origin.top;
      // Several arrows leaving one box fan out instead of overlapping.
      var ka = (used[from.id] = (used[from.id] || 0) + 1) - 1;
      var kb = (used[to.id] = (used[to.id] || 0) + 1) - 1;
      var y1 = a.top + dy + Math.min(a.height / 2 + ka * 12, a.height - 6);
      var y2 = b.top + dy + Math.min(b.height / 2 + kb * 12, b.height - 6);
      var x1, x2, c1, c2, bend;
      if (a.right <= b.left) {
        x1 = a.right + dx; x2 = b.left + dx; bend = Math.max(30, (x2 - x1) / 2);
        c1 = x1 + bend; c2 = x2 - bend;
      } else if (b.right <= a.left) {
        x1 = a.left + dx; x2 = b.right + dx; bend = Math.max(30, (x1 - x2) / 2);
        c1 = x1 - bend; c2 = x2 + bend;
      } else {
        x1 = a.right + dx; x2 = b.right + dx; c1 = x1 + 60; c2 = x2 + 60;
      }
      var d = "M" + x1.toFixed(1) + "," + y1.toFixed(1) + " C" + c1.toFixed(1) + "," + y1.toFixed(1) + " " +
        c2.toFixed(1) + "," + y2.toFixed(1) + " " + x2.toFixed(1) + "," + y2.toFixed(1);
      var path = el("path", {"class": "arrow", "data-drawn": "", "d": d, "marker-end": "url(#head)", "data-conflict": n,
        "data-from": item.getAttribute("data-from"), "data-to": item.getAttribute("data-to")});
      var spot = place(x1, c1, c2, x2, y1, y2, n);
      var badge = el("g", {"class": "badge", "data-drawn": "", "data-conflict-badge": n});
      var tip = el("title", {});
      tip.textContent = item.getAttribute("data-summary") || "";
      badge.appendChild(tip);
      badge.appendChild(el("circle", {"cx": spot[0].toFixed(1), "cy": spot[1].toFixed(1), "r": spot[2]}));
      var label = el("text", {"x": spot[0].toFixed(1), "y": spot[1].toFixed(1)});
      label.textContent = String(Number(n) + 1);
      badge.appendChild(label);
      // A white band under each arrow keeps it readable where it crosses
      // the boxes of the lanes in between.
      svg.appendChild(el("path", {"class": "halo", "data-drawn": "", "d": d}));
      svg.appendChild(path);
      badges.push(badge);
    });
    // Badges go over every arrow, so that no later arrow's band hides one.
    badges.forEach(function (badge) { svg.appendChild(badge); });
  }
  function focus(item, on) {
    var n = item.getAttribute("data-conflict-item");
    var nodes = [item, document.getElementById("step-" + item.getAttribute("data-from")),
      document.getElementById("step-" + item.getAttribute("data-to")),
      document.querySelector('path[data-conflict="' + n + '"]')];
    nodes.forEach(function (node) { if (node) node.classList.toggle("focus", on); });
  }
  function setup() {
    draw();
    Array.prototype.forEach.call(document.querySelectorAll("[data-conflict-item]"), function (item) {
      item.addEventListener("mouseenter", function () { focus(item, true); });
      item.addEventListener("mouseleave", function () { focus(item, false); });
    });
    var button = document.getElementById("copy-replay");
    if (button) button.addEventListener("click", function () {
      var code = document.getElementById("replay-line");
      function selectIt() {
        var range = document.createRange();
        range.selectNodeContents(code);
        var sel = window.getSelection();
        sel.removeAllRanges();
        sel.addRange(range);
        button.textContent = "selected";
      }
      // The clipboard API is refused on some pages opened from disk: then
      // select the line so that Ctrl-C copies it.
      if (navigator.clipboard) navigator.clipboard.writeText(code.textContent).then(function () {
        button.textContent = "copied";
      }, selectIt);
      else selectIt();
    });
    // Text reflows when the window changes or the fonts arrive: draw again
    // (draw replaces the arrows it drew before).
    window.addEventListener("resize", draw);
    if (document.fonts && document.fonts.ready) document.fonts.ready.then(draw);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setup);
  else setup();
})();
"""
