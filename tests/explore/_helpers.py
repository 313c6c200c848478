"""Shared helpers of the exploration tests."""

from __future__ import annotations

from typing import Any

import frontrun


def explore(setup: Any, threads: list[Any], invariant: Any, **kwargs: Any) -> frontrun.InterleavingResult:
    """explore_dpor without I/O detection (the preload library is not loaded
    under plain pytest, and that warning is tested on its own)."""
    kwargs.setdefault("detect_io", False)
    kwargs.setdefault("reproduce_on_failure", 3)
    return frontrun.explore_dpor(setup, threads, invariant, **kwargs)


def explore_all(setup: Any, threads: list[Any], invariant: Any = lambda s: True, **kwargs: Any) -> Any:
    """Full DPOR (no preemption bound), every execution."""
    kwargs.setdefault("preemption_bound", None)
    kwargs.setdefault("stop_on_first", False)
    return explore(setup, threads, invariant, **kwargs)
