"""pytest-xdist: every worker gets its own event ring, and the controller's
summary adds up the workers' totals. Against the local PostgreSQL, through
the documented psycopg2 race, under ``frontrun pytest -n N``."""

from __future__ import annotations

import re
import uuid

import pytest
from test_database_example import database_example
from test_pytest_plugin import RACY_SUITE, run_pytest

pytest_plugins = ["pytester"]


def copies_of_the_database_race(copies: int) -> dict[str, str]:
    """One test file per copy, each on its own tables (the copies run at
    the same time on different workers, and other runs of this suite on the
    same server do not meet them)."""
    example = database_example()
    tag = uuid.uuid4().hex[:8]
    return {f"test_stock_{n}": re.sub(r"\b(stock|orders)\b", rf"\g<1>_{n}_{tag}", example) for n in range(copies)}


@pytest.mark.parametrize(("how", "workers"), [("wrapper", 2), ("wrapper", 4), ("plain", 2)])
def test_every_copy_of_the_database_race_fails_on_every_worker(
    pytester: pytest.Pytester, postgresql_dsn: str, how: str, workers: int
) -> None:
    pytester.makepyfile(**copies_of_the_database_race(4))
    result = run_pytest(pytester, how, "-n", str(workers))
    out = result.stdout.str()
    result.assert_outcomes(failed=4)
    # Each copy failed with the race (in its traceback; the short summary
    # repeats the first line).
    raced = re.findall(r"^E\s+AssertionError: Race found after \d+ executions? \(invariant violated\)", out, re.M)
    assert len(raced) == 4, out
    section = out.split("= frontrun =", 1)[1]
    assert re.search(r"^explorations run: 4$", section, re.M), section
    assert re.search(r"^races found: 4$", section, re.M), section
    assert re.search(r"^events lost: 0$", section, re.M), section
    events = int(re.search(r"^C-level events seen: (\d+)$", section, re.M).group(1))
    assert events > 0, section


def test_the_controller_s_summary_adds_up_the_workers_totals(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_a=RACY_SUITE, test_b=RACY_SUITE)
    single = run_pytest(pytester, "plain")
    spread = run_pytest(pytester, "plain", "-n", "2")
    single.assert_outcomes(failed=2, passed=2)
    spread.assert_outcomes(failed=2, passed=2)

    def figures(result: pytest.RunResult) -> dict[str, int]:
        section = result.stdout.str().split("= frontrun =", 1)[1]
        names = ("explorations run", "executions explored", "races found", "events lost")
        return {name: int(re.search(rf"^{name}: (\d+)$", section, re.M).group(1)) for name in names}

    assert figures(spread) == figures(single)
    assert figures(single)["explorations run"] == 4
