"""Shared helpers of the synchronisation tests."""

from __future__ import annotations

from typing import Any

import frontrun


def explore_all(setup: Any, threads: list[Any], invariant: Any = lambda s: True, **kwargs: Any) -> Any:
    """Full DPOR, every execution, no I/O detection (plain pytest has no
    preload library)."""
    kwargs.setdefault("detect_io", False)
    kwargs.setdefault("preemption_bound", None)
    kwargs.setdefault("stop_on_first", False)
    kwargs.setdefault("reproduce_on_failure", 3)
    kwargs.setdefault("deadlock_timeout", 5.0)
    return frontrun.explore_dpor(setup, threads, invariant, **kwargs)


def assert_found(result: Any) -> None:
    assert not result.property_holds, "the race was not found"
    assert result.inconclusive == [], result.inconclusive
    assert result.reproduction_successes == result.reproduction_attempts


def assert_holds(result: Any) -> None:
    assert result.inconclusive == [], result.inconclusive
    result.assert_holds()
    assert result.exhausted
