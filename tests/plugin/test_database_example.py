"""The database example of docs/pytest.md, run as the page says: under
``frontrun pytest``, against the local PostgreSQL."""

from __future__ import annotations

import os
import re
import subprocess
import sys
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


@pytest.mark.parametrize("how", ["plain", "python -m pytest"])
def test_under_plain_pytest_the_hooks_are_installed_at_run_time_and_the_race_is_found(
    pytester: pytest.Pytester, postgresql_dsn: str, how: str
) -> None:
    pytester.makepyfile(test_stock=database_example())
    if how == "plain":
        result = run_pytest(pytester, "plain", "-W", "error")
    else:
        monkeypatch = pytest.MonkeyPatch()
        for name in ("LD_PRELOAD", "FRONTRUN_ACTIVE", "FRONTRUN_RING"):
            monkeypatch.delenv(name, raising=False)
        try:
            result = pytester.run(sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-W", "error")
        finally:
            monkeypatch.undo()
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert re.search(r"E\s+AssertionError: Race found after \d+ executions? \(invariant violated\)\.", out), out
    section = out.split("= frontrun =", 1)[1]
    assert "preload library: hooks installed at run time (no LD_PRELOAD)" in section
    assert int(re.search(r"^C-level events seen: (\d+)$", section, re.M).group(1)) > 0, section
    assert "note:" not in section


SCRIPT = """
import sys
from frontrun import _engine
import test_stock

result = test_stock.explore_dpor(test_stock.setup, [test_stock.buy, test_stock.buy], test_stock.sold_once)
print("holds" if result.property_holds else "race", result.native_events > 0, _engine.runtime_hook_slots() > 0)
"""


def test_a_plain_script_finds_the_race_without_ld_preload(pytester: pytest.Pytester, postgresql_dsn: str) -> None:
    pytester.makepyfile(test_stock=database_example())
    script = pytester.makepyfile(script=SCRIPT)
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD" and not k.startswith("FRONTRUN_")}
    proc = subprocess.run(
        [sys.executable, "-W", "error", str(script)],
        cwd=pytester.path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["race", "True", "True"], proc.stdout + proc.stderr


def test_with_run_time_hooks_turned_off_plain_pytest_does_not_see_the_driver(
    pytester: pytest.Pytester, postgresql_dsn: str
) -> None:
    pytester.makepyfile(test_stock=database_example())
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("FRONTRUN_RUNTIME_HOOKS", "0")
    try:
        result = run_pytest(pytester, "plain")
    finally:
        monkeypatch.undo()
    result.assert_outcomes(passed=1)
    section = result.stdout.str().split("= frontrun =", 1)[1]
    assert "note: detect_io=True but libfrontrun_io.so is not loaded" in section
    assert re.search(r"^executions explored: 1$", section, re.M), section


LATE_IMPORT_SCRIPT = """
import sys
from frontrun import _engine, explore_dpor

# The hooks go in with this first exploration, before psycopg2 (and libpq)
# are loaded: the dlopen of the import must patch them.
explore_dpor(list, [lambda s: s.append(1)], lambda s: True)
assert "psycopg2" not in sys.modules
before = _engine.runtime_hook_slots()
import psycopg2  # noqa: E402
after = _engine.runtime_hook_slots()
import test_stock  # noqa: E402

result = explore_dpor(test_stock.setup, [test_stock.buy, test_stock.buy], test_stock.sold_once)
print("holds" if result.property_holds else "race", before > 0, after > before)
"""


def test_a_driver_imported_after_the_hooks_went_in_is_hooked_by_its_dlopen(
    pytester: pytest.Pytester, postgresql_dsn: str
) -> None:
    pytester.makepyfile(test_stock=database_example().replace("import psycopg2\n", "import psycopg2  # noqa\n"))
    script = pytester.makepyfile(script=LATE_IMPORT_SCRIPT)
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD" and not k.startswith("FRONTRUN_")}
    proc = subprocess.run(
        [sys.executable, "-W", "error", str(script)],
        cwd=pytester.path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["race", "True", "True"], proc.stdout + proc.stderr


REFUSING_SCRIPT = """
import warnings
import frontrun._paths
from frontrun import FrontrunWarning, explore_dpor

frontrun._paths.preload_path = lambda: "/nonexistent/libfrontrun_io.so"
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    for _ in range(2):
        r = explore_dpor(list, [lambda s: s.append(1)], lambda s: s == [1])
print(r.property_holds, [w.category.__name__ for w in caught])
"""


def test_when_the_hooks_cannot_be_installed_it_says_so_in_one_line_and_goes_on(pytester: pytest.Pytester) -> None:
    script = pytester.makepyfile(script=REFUSING_SCRIPT)
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD" and not k.startswith("FRONTRUN_")}
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=pytester.path, env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "['FrontrunWarning']"], proc.stdout
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("frontrun: cannot install the native hooks at run time (dlopen(/nonexistent/")
    assert lines[0].endswith("native I/O is not seen, run under `frontrun pytest` to see it")


CHILD_ENV_SCRIPT = """
import subprocess
from frontrun import _engine, explore_dpor

explore_dpor(list, [lambda s: s.append(1)], lambda s: True)
assert _engine.runtime_hook_slots() > 0
print(subprocess.run(["sh", "-c", "echo ${FRONTRUN_RING-unset}"], capture_output=True, text=True).stdout.strip())
"""


@pytest.mark.parametrize("inherited", [False, True])
def test_run_time_hooks_use_a_ring_of_their_own_and_do_not_pass_it_to_children(
    pytester: pytest.Pytester, tmp_path: Path, inherited: bool
) -> None:
    script = pytester.makepyfile(script=CHILD_ENV_SCRIPT)
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD" and not k.startswith("FRONTRUN_")}
    if inherited:  # as a plain child of a process whose library made a ring
        parent_ring = tmp_path / "parent-ring"
        parent_ring.write_bytes(b"")
        env["FRONTRUN_RING"] = str(parent_ring)
    proc = subprocess.run(
        [sys.executable, "-W", "error", str(script)], env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["unset"], proc.stdout
    assert proc.stderr == ""


def test_the_replay_line_of_a_plain_pytest_failure_replays_it_in_a_fresh_process(
    pytester: pytest.Pytester, postgresql_dsn: str
) -> None:
    pytester.makepyfile(test_stock=database_example())
    first = run_pytest(pytester, "plain")
    first.assert_outcomes(failed=1)
    token = TOKEN.search(first.stdout.str()).group(1)
    script = pytester.makepyfile(
        replay_it=(
            "import frontrun, test_stock as t\n"
            f"run = frontrun.replay({token!r}, t.setup, [t.buy, t.buy], t.sold_once)\n"
            "print(run.invariant_holds)\n"
        )
    )
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD" and not k.startswith("FRONTRUN_")}
    proc = subprocess.run(
        [sys.executable, "-W", "error", str(script)],
        cwd=pytester.path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False"], proc.stdout + proc.stderr
