"""The database example of docs/pytest.md, run as the page says: under
``frontrun pytest``, against the local PostgreSQL."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_pytest_plugin import TOKEN, run_pytest

pytest_plugins = ["pytester"]

DOC = Path(__file__).resolve().parents[2] / "docs" / "pytest.md"


def database_example() -> str:
    section = DOC.read_text(encoding="utf-8").split("## Databases under `LD_PRELOAD`", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_documented_database_race_is_found_under_the_wrapper(
    pytester: pytest.Pytester, postgresql_dsn: str
) -> None:
    pytester.makepyfile(test_stock=database_example())
    result = run_pytest(pytester, "wrapper")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert re.search(r"E\s+AssertionError: Race found after \d+ executions? \(invariant violated\)\.", out), out
    assert TOKEN.search(out), out
    section = out.split("= frontrun =", 1)[1]
    events = int(re.search(r"^C-level events seen: (\d+)$", section, re.M).group(1))
    assert events > 0, section


def test_under_plain_pytest_the_same_example_passes_and_says_why(
    pytester: pytest.Pytester, postgresql_dsn: str
) -> None:
    pytester.makepyfile(test_stock=database_example())
    result = run_pytest(pytester, "plain")
    result.assert_outcomes(passed=1)
    out = result.stdout.str()
    section = out.split("= frontrun =", 1)[1]
    assert "note: detect_io=True but libfrontrun_io.so is not loaded" in section
    assert "preload library: not loaded" in section
    assert re.search(r"^executions explored: 1$", out, re.M), out
