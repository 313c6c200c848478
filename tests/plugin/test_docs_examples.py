"""The examples of docs/pytest.md print what the page says they print."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_pytest_plugin import TOKEN, run_pytest

pytest_plugins = ["pytester"]

DOC = Path(__file__).resolve().parents[2] / "docs" / "pytest.md"


def blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def failure_lines(text: str) -> list[str]:
    """The ``E`` lines of the assertion, without pytest's prefix."""
    lines = [ln[1:].strip() for ln in text.splitlines() if ln.startswith("E")]
    start = next(i for i, ln in enumerate(lines) if ln.startswith("AssertionError: Race found"))
    end = next(i for i, ln in enumerate(lines) if ln.startswith("Reproduced"))
    return [re.sub(r"\s+", " ", ln) for ln in lines[start : end + 1]]


def test_the_quick_start_fails_with_the_message_the_page_shows(pytester: pytest.Pytester) -> None:
    example = blocks("python")[0]
    assert example.startswith("# test_counter.py\n")
    pytester.makepyfile(test_counter=example)
    result = run_pytest(pytester, "plain")
    result.assert_outcomes(failed=1)
    shown = next(b for b in blocks("text") if "AssertionError: Race found" in b)
    assert failure_lines(result.stdout.str()) == failure_lines(shown)
    # The decorator the page pastes carries the token of that message.
    token = TOKEN.search(result.stdout.str()).group(1)
    assert f'@frontrun.reproduce("{token}")' in DOC.read_text(encoding="utf-8").split("## Replaying", 1)[1]
