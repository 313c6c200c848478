"""An ``async def`` test can call explore_async under pytest-asyncio and
under anyio's pytest plugin: the exploration's loop runs on a thread of its
own while the test's loop waits for it.

The two plugins live outside the venv's site-packages (scripts/setup puts
them in ``$venv/async-test-plugins``), so that pytest autoloads them only
in the run made here."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import async_programs as p
import frontrun
import pytest

pytest_plugins = ["pytester"]

PLUGINS = Path(sys.prefix) / "async-test-plugins"
PROGRAMS = Path(__file__).with_name("async_programs.py")

TESTS = """
import async_programs as p
import frontrun
import pytest


@pytest.mark.asyncio
async def test_explore_async_from_a_pytest_asyncio_test():
    result = frontrun.explore_async(p.Counter, [p.increment, p.increment], lambda c: c.value == 2)
    assert result.property_holds is False
    assert "lost update on Counter.value" in result.explanation


@pytest.mark.anyio
async def test_explore_async_from_an_anyio_test():
    result = frontrun.explore_async(p.Counter, [p.increment_locked, p.increment_locked], lambda c: c.value == 2)
    assert result.property_holds is True


@pytest.mark.asyncio
@frontrun.reproduce(TOKEN)
async def test_reproduce_on_an_async_test_replays_the_token():
    result = frontrun.explore_async(p.Counter, [p.increment, p.increment], lambda c: c.value == 2)
    assert result.num_explored == 1
    assert result.property_holds is False


@pytest.fixture
def anyio_backend():
    return "asyncio"
"""


def test_async_tests_under_pytest_asyncio_and_anyio_call_explore_async(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (PLUGINS / "pytest_asyncio").is_dir() and (PLUGINS / "anyio").is_dir(), (
        f"{PLUGINS} lacks pytest-asyncio or anyio: run scripts/setup"
    )
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\nfilterwarnings =\n    error\n")
    found = frontrun.explore_async(p.Counter, [p.increment, p.increment], lambda c: c.value == 2)
    token = re.search(r'reproduce\("(fr1\.[^"]+)"\)', found.explanation or "")
    assert token is not None
    tests = TESTS.replace("TOKEN", repr(token.group(1)))
    pytester.makepyfile(async_programs=PROGRAMS.read_text(encoding="utf-8"), test_async_plugins=tests)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(PLUGINS), str(pytester.path)]))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v")
    result.stdout.fnmatch_lines(["*plugins:*asyncio-1.5.0*anyio-4.16.0*"])
    result.assert_outcomes(passed=3)
