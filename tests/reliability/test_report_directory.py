"""Where reports go: a directory that cannot be written is a usage error
before the search starts, and one that breaks during the search costs the
page, not the race."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from frontrun import explore_dpor

pytest_plugins = ["pytester"]


class Counter:
    def __init__(self) -> None:
        self.value = 0

    def increment(self) -> None:
        tmp = self.value
        self.value = tmp + 1


def test_an_unwritable_report_dir_is_refused_before_anything_runs(tmp_path: Path) -> None:
    calls = []

    def setup() -> Counter:
        calls.append(1)
        return Counter()

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(ValueError, match=r"report_dir .*a-file/reports.*is not a directory"):
        explore_dpor(setup, [Counter.increment] * 2, lambda c: True, detect_io=False, report_dir=blocker / "reports")
    assert calls == []


def test_a_report_dir_that_breaks_during_the_search_keeps_the_result_and_warns(tmp_path: Path) -> None:
    reports = tmp_path / "reports"

    def setup() -> Counter:
        # The directory is fine when checked, then turns into a file.
        if reports.is_dir():
            os.rmdir(reports)
            reports.write_text("not a directory any more")
        return Counter()

    reports.mkdir()
    with pytest.warns(RuntimeWarning, match="the HTML report could not be written to"):
        result = explore_dpor(
            setup, [Counter.increment] * 2, lambda c: c.value == 2, detect_io=False, report_dir=reports
        )
    assert not result.property_holds
    assert result.counterexample is not None
    assert result.report_path is None
    assert result.explanation is not None
    assert "No HTML report: the HTML report could not be written to" in result.explanation
    assert "Replay with:" in result.explanation


def test_a_writable_report_dir_is_created_only_when_a_report_is_written(tmp_path: Path) -> None:
    reports = tmp_path / "new" / "reports"
    result = explore_dpor(Counter, [Counter.increment], lambda c: True, detect_io=False, report_dir=reports)
    assert result.property_holds
    assert not (tmp_path / "new").exists()
    # The check left nothing behind either.
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("option", "value", "fragment"),
    [
        ("--frontrun-max-executions", "0", "must be at least 1, got 0"),
        ("--frontrun-max-executions", str(10**30), "must be at most 18446744073709551615"),
        ("--frontrun-max-executions", "many", "expected a whole number of executions, got 'many'"),
        ("--frontrun-report", "/proc/frontrun-reports", "cannot create a directory in /proc"),
        ("--frontrun-report", "", "an empty path names no directory"),
    ],
)
def test_a_bad_plugin_option_is_a_usage_error(
    pytester: pytest.Pytester, option: str, value: str, fragment: str
) -> None:
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    result = pytester.runpytest_subprocess(f"{option}={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    text = "\n".join(result.errlines)
    assert option in text and fragment in text, text


def test_a_report_option_naming_a_file_is_refused_before_collection(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    (pytester.path / "taken").write_text("")
    result = pytester.runpytest_subprocess("--frontrun-report", "taken/reports")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--frontrun-report taken/reports:" in "\n".join(result.errlines)
    assert "is not a directory" in "\n".join(result.errlines)
