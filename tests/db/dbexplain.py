"""Helpers of the database tests (a module of its own: conftest modules
are not importable by name)."""

from __future__ import annotations


def interleaving(explanation: str) -> list[str]:
    """The step lines of an explanation's interleaving section."""
    lines = explanation.splitlines()
    start = lines.index("Interleaving (steps that touch shared locations):")
    out = []
    for ln in lines[start + 1 :]:
        if not ln.strip():
            break
        out.append(ln.strip())
    return out
