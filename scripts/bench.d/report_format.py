"""What the pages of report.py share: the tools' names and labels, and how
a point's figures are written (cells, ratios, one row per point)."""

from __future__ import annotations

import math
from typing import Any

TOOLS = ("ours", "peer")
LABEL = {"ours": "this project", "peer": "frontrun 0.7.0"}
#: The groups of suite.py whose points fill the main tables; the others
#: have sections of their own.
CORE = ("explore", "db")
GROUPS = ("explore", "db", "libraries", "tracing", "sleep", "async")
MODE_LABEL = {"first": "first failure", "exhaustive": "exhaustive", "bounded": "exhaustive, preemption bound 2"}
COLOR = {"ours": "tab:blue", "peer": "tab:orange"}


def time_ratio(p: dict[str, Any]) -> tuple[float, bool] | None:
    """0.7.0's seconds over this project's, and whether it is a lower bound."""
    ours, peer = p["tools"]["ours"], p["tools"].get("peer")
    if peer is None or ours["status"] != "ok" or peer["status"] not in ("ok", "capped"):
        return None
    return peer["seconds"] / ours["seconds"], peer["status"] == "capped"


def geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def fmt_s(x: float) -> str:
    return f"{x * 1000:.1f} ms" if x < 1 else f"{x:.2f} s"


def cell(t: dict[str, Any], what: str) -> str:
    if t["status"] in ("unsupported", "failed") and "executions" not in t:
        return t["status"]
    capped = t["status"] == "capped"
    if what == "executions":
        return f"≥ {t['executions']}" if capped else str(t["executions"])
    if what == "seconds":
        return f"≥ {fmt_s(t['seconds'])}" if capped else fmt_s(t["seconds"])
    if what == "rate":
        return f"{t['executions_per_s']:,.0f}"
    raise ValueError(what)


def note(t: dict[str, Any]) -> str:
    return f"{t['status']}: {t['reason']}" if t["status"] != "ok" else ""


def point_row(p: dict[str, Any], name: str | None = None) -> str:
    """One row of a per-point table: executions, time, ratio (this / 0.7.0)."""
    o, q = p["tools"]["ours"], p["tools"]["peer"]
    r = time_ratio(p)
    ratio = "n/a" if r is None else f"{'≥ ' if r[1] else ''}x{r[0]:.1f}"
    return (
        f"| {name or p['workload']} | {p['n']} | {cell(o, 'executions')} / {cell(q, 'executions')} "
        f"| {cell(o, 'seconds')} / {cell(q, 'seconds')} | {ratio} |"
    )
