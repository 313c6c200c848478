"""The pytest plugin as a user meets it: pytest runs in a subprocess, started
the three ways a user starts it (plain, under ``LD_PRELOAD``, through the
``frontrun`` wrapper), and the tests read what it printed."""

from __future__ import annotations

import os
import re
import signal
import sys
import textwrap
from pathlib import Path

import pytest
from frontrun import preload_path
from frontrun._token import decode

pytest_plugins = ["pytester"]

VENV_BIN = Path(sys.executable).parent

RACY_SUITE = """
from frontrun import explore_dpor


class Counter:
    def __init__(self):
        self.value = 0

    def increment(self):
        current = self.value
        self.value = current + 1


def setup():
    return Counter()


threads = [Counter.increment, Counter.increment]


def invariant(c):
    return c.value == 2


def test_lost_update():
    explore_dpor(setup, threads, invariant, detect_io=False).assert_holds()


def test_one_thread_is_safe():
    explore_dpor(setup, threads[:1], lambda c: c.value == 1, detect_io=False).assert_holds()
"""

#: The replay line: the token (group 1) and the call to paste (group 2).
TOKEN = re.compile(
    r'Replay with: @frontrun\.reproduce\("(fr1\.[a-z2-7]+)"\) on the test, '
    r'or (frontrun\.replay\("\1", setup, threads, invariant(?:, detect_io=False)?\))$',
    re.M,
)


#: One step of an explanation: thread, line number, source and accesses
#: (the file name differs between the original test and the pasted one).
STEP = re.compile(r"^E\s+thread (\d) \| \w+\.py:(\d+)\s+(.*)$", re.M)


def run_pytest(pytester: pytest.Pytester, how: str, *args: str) -> pytest.RunResult:
    """Run pytest on the files in ``pytester.path``, started as ``how`` says."""
    monkeypatch = pytest.MonkeyPatch()
    try:
        return _run_pytest(monkeypatch, pytester, how, *args)
    finally:
        monkeypatch.undo()


def _run_pytest(monkeypatch: pytest.MonkeyPatch, pytester: pytest.Pytester, how: str, *args: str) -> pytest.RunResult:
    env_path = f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    monkeypatch.setenv("PATH", env_path)
    monkeypatch.delenv("LD_PRELOAD", raising=False)
    monkeypatch.delenv("FRONTRUN_ACTIVE", raising=False)
    monkeypatch.delenv("FRONTRUN_RING", raising=False)
    if how == "plain":
        return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)
    if how == "preload":
        monkeypatch.setenv("LD_PRELOAD", preload_path())
        return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)
    assert how == "wrapper"
    return pytester.run(str(VENV_BIN / "frontrun"), "pytest", "-p", "no:cacheprovider", *args)


HEADER = {
    "plain": "frontrun: preload library not loaded",
    "preload": "frontrun: preload library loaded (LD_PRELOAD)",
    "wrapper": "frontrun: preload library loaded (started by `frontrun`)",
}


@pytest.mark.parametrize("how", ["plain", "preload", "wrapper"])
def test_a_racy_test_fails_with_the_explanation_and_a_replay_line_and_a_summary(
    pytester: pytest.Pytester, how: str
) -> None:
    pytester.makepyfile(test_counter=RACY_SUITE)
    result = run_pytest(pytester, how)
    out = result.stdout.str()
    result.assert_outcomes(failed=1, passed=1)
    assert "skipped" not in out.rsplit("\n", 2)[-2], out
    assert HEADER[how] not in out  # the header only when asked (-v)
    assert re.search(rf"^preload library: {re.escape(HEADER[how].split('library ', 1)[1])}", out, re.M), out
    # The user's AssertionError carries the explanation and the replay line.
    assert re.search(r"E\s+AssertionError: Race found after \d+ executions \(invariant violated\)\.", out), out
    assert re.search(r"E\s+lost update on Counter\.value: thread 0 read it", out), out
    assert TOKEN.search(out), out
    # The summary section, with this run's figures.
    section = out.split("= frontrun =", 1)[1]
    assert re.search(r"^explorations run: 2$", section, re.M), section
    assert re.search(r"^races found: 1$", section, re.M), section
    executions = int(re.search(r"^executions explored: (\d+)$", section, re.M).group(1))
    assert executions >= 3
    assert re.search(r"^C-level events seen: \d+$", section, re.M), section
    assert re.search(r"^events lost: 0$", section, re.M), section
    # Not a terminal: no progress line.
    assert "executions explored," not in out


@pytest.mark.parametrize("how", ["plain", "wrapper"])
def test_the_pasted_replay_line_reproduces_exactly_that_failure(pytester: pytest.Pytester, how: str) -> None:
    pytester.makepyfile(test_counter=RACY_SUITE)
    first = run_pytest(pytester, how, "-k", "lost_update")
    token, call = TOKEN.search(first.stdout.str()).groups()
    assert call.endswith("detect_io=False)")  # as the exploration had it
    original = STEP.findall(first.stdout.str())
    assert len(original) == 4

    # The line pasted into new tests: as a decorator on a copy of the test,
    # and as a call.
    pytester.makepyfile(
        test_pasted=RACY_SUITE.replace("def test_one_thread_is_safe", "def _unused")
        + textwrap.dedent(f'''
            import frontrun


            @frontrun.reproduce("{token}")
            def test_lost_update_reproduced():
                explore_dpor(setup, threads, invariant, detect_io=False).assert_holds()


            def test_replay_call_fails_the_invariant():
                run = {call}
                assert run.invariant_holds is False
                assert run.schedule == {decode(token)[1]!r}
            ''')
    )
    os.unlink(pytester.path / "test_counter.py")
    result = run_pytest(pytester, how, "-k", "reproduced or replay_call")
    out = result.stdout.str()
    result.assert_outcomes(failed=1, passed=1)
    assert "FAILED test_pasted.py::test_lost_update_reproduced" in out
    # One execution, the very interleaving of the original failure.
    assert re.search(r"E\s+AssertionError: Race found after 1 execution \(invariant violated\)\.", out), out
    assert STEP.findall(out) == original
    assert f'@frontrun.reproduce("{token}")' in out
    section = out.split("= frontrun =", 1)[1]
    assert re.search(r"^executions explored: 1$", section, re.M), section


def test_max_executions_option_bounds_explorations_that_set_no_limit(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_many="""
        from frontrun import explore_dpor

        class Box:
            def __init__(self):
                self.a = 0

        def bump(box):
            for _ in range(3):
                box.a += 1

        def test_unbounded():
            r = explore_dpor(Box, [bump, bump, bump], lambda b: True, detect_io=False, preemption_bound=None)
            assert r.num_explored == 4 and not r.exhausted

        def test_own_limit_wins():
            r = explore_dpor(Box, [bump, bump], lambda b: True, detect_io=False, max_executions=2)
            assert r.num_explored == 2
        """
    )
    result = run_pytest(pytester, "plain", "--frontrun-max-executions", "4")
    result.assert_outcomes(passed=2)
    assert re.search(r"^executions explored: 6$", result.stdout.str(), re.M), result.stdout.str()


PACKAGE_PATTERNS_SUITE = """
import collections
from frontrun import explore_dpor

def incr(d):
    d["n"] = d["n"] + 1

def test_userdict_race():
    r = explore_dpor(lambda: collections.UserDict(n=0), [incr, incr], lambda d: d["n"] == 2, detect_io=False)
    r.assert_holds()
"""


def test_package_patterns_come_from_the_options_and_the_ini(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_userdict=PACKAGE_PATTERNS_SUITE)
    # Not traced by default: the pass says why it proves little.
    plain = run_pytest(pytester, "plain")
    plain.assert_outcomes(passed=1)
    assert re.search(r"^note: no shared access was seen: .*collections", plain.stdout.str(), re.M), plain.stdout.str()
    # Named on the command line, the race in UserDict's code is found.
    run_pytest(pytester, "plain", "--frontrun-trace-packages", "json,collections").assert_outcomes(failed=1)
    # Named in the ini file, likewise; and skip_packages, from the command
    # line, can take it out again only where trace_packages does not name it.
    pytester.makeini("[pytest]\nfrontrun_trace_packages =\n    collections\n")
    run_pytest(pytester, "plain").assert_outcomes(failed=1)
    run_pytest(pytester, "plain", "--frontrun-skip-packages=collections").assert_outcomes(failed=1)


def test_skip_packages_option_leaves_a_package_untraced(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        mylib="""
        class Counter:
            def __init__(self):
                self.n = 0

            def incr(self):
                self.n = self.n + 1
        """,
        test_mylib="""
        import mylib
        from frontrun import explore_dpor

        def test_counter():
            r = explore_dpor(mylib.Counter, [mylib.Counter.incr] * 2, lambda c: c.n == 2, detect_io=False)
            r.assert_holds()
        """,
    )
    run_pytest(pytester, "plain").assert_outcomes(failed=1)
    run_pytest(pytester, "plain", "--frontrun-skip-packages", "mylib").assert_outcomes(passed=1)


@pytest.mark.parametrize("value", ["0", "many"])
def test_a_bad_max_executions_is_a_usage_error(pytester: pytest.Pytester, value: str) -> None:
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    result = run_pytest(pytester, "plain", f"--frontrun-max-executions={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--frontrun-max-executions" in result.stderr.str()


def test_report_option_writes_one_page_per_failure_and_names_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_counter=RACY_SUITE)
    result = run_pytest(pytester, "plain", "--frontrun-report", "reports")
    result.assert_outcomes(failed=1, passed=1)
    pages = sorted((pytester.path / "reports").glob("*.html"))
    assert len(pages) == 1
    out = result.stdout.str()
    assert f"HTML report: {pages[0]}" in out.split("= frontrun =", 1)[1]
    assert re.search(rf"E\s+HTML report: {re.escape(str(pages[0]))}", out), out
    page = pages[0].read_text(encoding="utf-8")
    assert "lost update on Counter.value" in page
    assert "current = self.value" in page
    token = TOKEN.search(out).group(1)
    assert f"@frontrun.reproduce(&quot;{token}&quot;)" in page or f'@frontrun.reproduce("{token}")' in page


LOCK_HEAVY_SUITE = """
import threading

LOCK = threading.Lock()


def test_locks_without_exploring():
    assert type(threading.Lock()) is type(LOCK)
    assert type(LOCK).__module__ == "_thread"
    for _ in range(1000):
        with LOCK:
            pass
"""


def frontrun_lines(out: str) -> list[str]:
    """Lines mentioning frontrun, except pytest's own list of plugins and
    the paths of the temporary directory (named after the test)."""
    return [line for line in out.splitlines() if "frontrun" in line and not line.startswith(("plugins:", "rootdir:"))]


@pytest.mark.parametrize("how", ["plain", "preload", "wrapper"])
def test_a_run_where_nothing_explores_shows_no_trace_of_frontrun(pytester: pytest.Pytester, how: str) -> None:
    pytester.makepyfile(test_locks=LOCK_HEAVY_SUITE)
    result = run_pytest(pytester, how, "-W", "error")
    result.assert_outcomes(passed=1)
    out = result.stdout.str() + result.stderr.str()
    assert frontrun_lines(out) == [], out


@pytest.mark.parametrize("how", ["plain", "preload", "wrapper"])
def test_with_verbose_the_header_says_how_the_library_was_loaded(pytester: pytest.Pytester, how: str) -> None:
    pytester.makepyfile(test_locks=LOCK_HEAVY_SUITE)
    result = run_pytest(pytester, how, "-v")
    result.assert_outcomes(passed=1)
    out = result.stdout.str()
    assert f"{HEADER[how]}" in out
    assert "cooperative primitives only during explorations" in out
    # Asked for: the summary section too, with zeros.
    assert re.search(r"^explorations run: 0$", out.split("= frontrun =", 1)[1], re.M), out


def test_no_patch_locks_is_reported_in_the_header(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    result = run_pytest(pytester, "plain", "--no-frontrun-patch-locks")
    result.assert_outcomes(passed=1)
    assert (
        "cooperative primitives only during explorations, earlier locks left real (--no-frontrun-patch-locks)"
        in result.stdout.str()
    )


DETECTING_SUITE = """
from frontrun import explore_dpor


def test_one(tmp_path):
    explore_dpor(list, [lambda s: s.append(1)], lambda s: s == [1]).assert_holds()


def test_two(tmp_path):
    explore_dpor(list, [lambda s: s.append(2)], lambda s: s == [2]).assert_holds()
"""


def test_the_library_not_loaded_notice_never_fails_a_test_under_w_error(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_detecting=DETECTING_SUITE)
    pytester.makeini("[pytest]\nfilterwarnings =\n    error\n")
    # As where the hooks cannot be installed at run time.
    monkeypatch.setenv("FRONTRUN_RUNTIME_HOOKS", "0")
    result = run_pytest(pytester, "plain", "-W", "error")
    result.assert_outcomes(passed=2)
    out = result.stdout.str()
    assert "warnings summary" not in out, out
    section = out.split("= frontrun =", 1)[1]
    # Said once, in the summary.
    assert section.count("note: detect_io=True but libfrontrun_io.so is not loaded") == 1, section


def test_the_plugin_can_be_turned_off(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    result = run_pytest(pytester, "plain", "-p", "no:frontrun")
    result.assert_outcomes(passed=1)
    assert "frontrun" not in result.stdout.str()


def test_importing_the_plugin_loads_neither_the_explorer_nor_the_report_code(pytester: pytest.Pytester) -> None:
    probe = (
        "import sys, frontrun.pytest_plugin\n"
        "heavy = [m for m in ('frontrun.dpor', 'frontrun._explain', 'frontrun._report_html', "
        "'frontrun._opcodes', 'frontrun._coop') if m in sys.modules]\n"
        "print('heavy:', heavy)\n"
    )
    result = pytester.run(sys.executable, "-c", probe)
    assert result.ret == 0, result.stderr.str()
    assert "heavy: []" in result.stdout.str()


def run_on_a_terminal(pytester: pytest.Pytester, *args: str) -> str:
    """Run pytest with its output on a pseudo-terminal; returns what it wrote."""
    import pty
    import subprocess

    main, secondary = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD" and not k.startswith("FRONTRUN_")}
    env.update(TERM="xterm", COLUMNS="120")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=pytester.path,
        stdin=subprocess.DEVNULL,
        stdout=secondary,
        stderr=secondary,
        env=env,
    )
    os.close(secondary)
    chunks = []
    while True:
        try:
            data = os.read(main, 4096)
        except OSError:  # EIO: the terminal's other side is closed
            break
        if not data:
            break
        chunks.append(data)
    os.close(main)
    assert proc.wait(timeout=120) in (0, 1)
    return b"".join(chunks).decode("utf-8", "replace")


LONG_EXPLORATION = """
from frontrun import explore_dpor

class Box:
    def __init__(self):
        self.a = 0

def bump(box):
    for _ in range(3):
        box.a += 1

def test_long():
    r = explore_dpor(Box, [bump, bump, bump], lambda b: True, detect_io=False, preemption_bound=None,
                     total_timeout=1.8)
    assert r.num_explored > 10

def test_short():
    explore_dpor(Box, [bump], lambda b: True, detect_io=False)
"""

PROGRESS = re.compile(r"\rfrontrun: ([\d,]+) executions explored, ([\d,]+)/s, (\d+\.\d)s elapsed")


def test_a_long_exploration_shows_a_live_progress_line_on_a_terminal(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_long=LONG_EXPLORATION)
    out = run_on_a_terminal(pytester)
    assert "2 passed" in out, out
    updates = PROGRESS.findall(out)
    # Shown from one second on, updated in place, and closed with the verdict.
    assert len(updates) >= 2, out
    elapsed = [float(e) for _, _, e in updates]
    counts = [int(n.replace(",", "")) for n, _, _ in updates]
    assert elapsed[0] >= 1.0 and elapsed == sorted(elapsed)
    assert counts == sorted(counts) and counts[-1] > counts[0]
    # The last update ends with the verdict and what it covers, not "done".
    assert re.search(
        r"\rfrontrun: [\d,]+ executions explored, [\d,]+/s, \d+\.\ds elapsed; holds for the \d+ executions run: "
        r"stopped by total_timeout",
        out,
    ), out
    # Only the long exploration had one.
    assert out.count("elapsed; holds") == 1


def test_no_progress_line_when_output_is_not_a_terminal(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_long=LONG_EXPLORATION)
    result = run_pytest(pytester, "plain")
    result.assert_outcomes(passed=2)
    assert "executions explored," not in result.stdout.str()


# A conftest that stands in for frontrun._coop and records, in a file, when
# the plugin calls it relative to the collection of the test module.
RECORDING_COOP = """
import sys, types
from pathlib import Path

LOG = Path(__file__).with_name("coop.log")
coop = types.ModuleType("frontrun._coop")
coop.depth = 0

def install():
    coop.depth += 1
    with LOG.open("a") as f:
        f.write("install\\n")

def uninstall():
    coop.depth -= 1
    with LOG.open("a") as f:
        f.write("uninstall\\n")

def installed():
    return coop.depth > 0

coop.install, coop.uninstall, coop.installed = install, uninstall, installed
sys.modules["frontrun._coop"] = coop
"""

MODULE_SEES_COOP = """
import sys
from pathlib import Path

with Path(__file__).with_name("coop.log").open("a") as f:
    f.write(f"collected installed={sys.modules['frontrun._coop'].installed()}\\n")

def test_nothing():
    pass
"""


@pytest.mark.parametrize(
    ("args", "log"),
    [
        ((), ["collected installed=False"]),
        (("--frontrun-patch-locks",), ["install", "collected installed=True", "uninstall"]),
        (("--no-frontrun-patch-locks",), ["collected installed=False"]),
    ],
)
def test_cooperative_primitives_are_installed_before_collection_and_removed_at_the_end(
    pytester: pytest.Pytester, args: tuple[str, ...], log: list[str]
) -> None:
    pytester.makeconftest(RECORDING_COOP)
    pytester.makepyfile(test_module=MODULE_SEES_COOP)
    result = run_pytest(pytester, "plain", *args)
    result.assert_outcomes(passed=1)
    assert (pytester.path / "coop.log").read_text().splitlines() == log
    if args:
        status = {
            "--frontrun-patch-locks": "patched before collection (--frontrun-patch-locks)",
            "--no-frontrun-patch-locks": "only during explorations, earlier locks left real "
            "(--no-frontrun-patch-locks)",
        }[args[0]]
        assert f"cooperative primitives {status}" in result.stdout.str()
    else:
        assert frontrun_lines(result.stdout.str()) == []


def test_asking_for_cooperative_primitives_a_build_lacks_is_a_usage_error(pytester: pytest.Pytester) -> None:
    # Hide the module, whether or not this build has one.
    pytester.makeconftest('import sys\nsys.modules["frontrun._coop"] = None\n')
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    result = run_pytest(pytester, "plain", "--frontrun-patch-locks")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--frontrun-patch-locks: this build of frontrun has no cooperative primitives" in result.stderr.str()
    # Nothing asked for: the run does not need them.
    default = run_pytest(pytester, "plain")
    default.assert_outcomes(passed=1)


ASSERTING_INVARIANT = """
from frontrun import explore_dpor


class Counter:
    def __init__(self):
        self.value = 0

    def increment(self):
        current = self.value
        self.value = current + 1


def both_counted(c):
    assert c.value == 2, "both increments counted"


def test_lost_update():
    explore_dpor(Counter, [Counter.increment, Counter.increment], both_counted, detect_io=False).assert_holds()
"""


def test_an_invariant_that_asserts_fails_the_test_with_its_own_assertion_and_the_explanation(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_asserting=ASSERTING_INVARIANT)
    result = run_pytest(pytester, "plain")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    # The user's assert line, with pytest's own rendering of its values...
    assert re.search(r'^>\s+assert c\.value == 2, "both increments counted"$', out, re.M), out
    assert re.search(r"^E\s+AssertionError: both increments counted$", out, re.M), out
    assert re.search(r"^E\s+assert 1 == 2$", out, re.M), out
    # ... then the explanation and the replay line.
    assert re.search(r"^E\s+lost update on Counter\.value", out, re.M), out
    token = TOKEN.search(out).group(1)

    pytester.makepyfile(
        test_asserting=ASSERTING_INVARIANT.replace(
            "def test_lost_update", f'import frontrun\n\n\n@frontrun.reproduce("{token}")\ndef test_lost_update'
        )
    )
    again = run_pytest(pytester, "plain")
    again.assert_outcomes(failed=1)
    out = again.stdout.str()
    assert re.search(r"^E\s+AssertionError: both increments counted$", out, re.M), out
    assert re.search(r"^E\s+Race found after 1 execution \(invariant violated\)\.$", out, re.M), out


def test_a_pytest_run_inside_a_test_leaves_the_outer_session_as_it_was(pytester: pytest.Pytester) -> None:
    from frontrun import _stats

    defaults, totals, explorations = _stats.DEFAULTS, _stats.TOTALS, _stats.TOTALS.explorations
    pytester.makepyfile(test_counter=RACY_SUITE)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--frontrun-max-executions", "7")
    result.assert_outcomes(failed=1, passed=1)
    assert re.search(r"^explorations run: 2$", result.stdout.str(), re.M)
    assert _stats.DEFAULTS is defaults
    assert _stats.TOTALS is totals and totals.explorations == explorations


MODULE_LEVEL_LOCK = """
import threading

from frontrun import explore_dpor

LOCK = threading.Lock()  # created at import time, during collection


class Counter:
    def __init__(self):
        self.value = 0


def increment(c):
    with LOCK:
        current = c.value
        c.value = current + 1


def test_a_module_level_lock_protects_the_counter():
    result = explore_dpor(Counter, [increment, increment], lambda c: c.value == 2, detect_io=False,
                          deadlock_timeout=1.0)
    assert result.inconclusive == []
    result.assert_holds()
    assert result.num_explored >= 2
"""


@pytest.mark.parametrize("args", [(), ("--frontrun-patch-locks",)])
def test_a_module_level_lock_is_cooperative_under_the_plugin(pytester: pytest.Pytester, args: tuple[str, ...]) -> None:
    pytester.makepyfile(test_locked=MODULE_LEVEL_LOCK)
    result = run_pytest(pytester, "plain", *args)
    result.assert_outcomes(passed=1)


def test_without_the_patch_a_module_level_lock_stays_real_and_the_exploration_is_inconclusive(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_locked=MODULE_LEVEL_LOCK)
    result = run_pytest(pytester, "plain", "--no-frontrun-patch-locks")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "earlier locks left real (--no-frontrun-patch-locks)" in out
    # The inner test's own check: executions given up on the real lock.
    assert re.search(r"^>\s+assert result\.inconclusive == \[\]$", out, re.M), out
    # Seen at once as a contended lock frontrun does not control, not after
    # deadlock_timeout.
    assert "would block on a threading.Lock that is not cooperative" in out
    assert "no scheduling point reached" not in out


ENDLESS_EXPLORATION = """
from frontrun import explore_dpor

class Box:
    def __init__(self):
        self.a = 0

def bump(box):
    for _ in range(4):
        box.a += 1

def test_endless():
    explore_dpor(Box, [bump, bump, bump, bump], lambda b: True, detect_io=False, preemption_bound=None)
"""


def test_ctrl_c_ends_the_progress_line_as_interrupted_and_the_summary_counts_what_ran(
    pytester: pytest.Pytester,
) -> None:
    import pty
    import select
    import subprocess

    pytester.makepyfile(test_endless=ENDLESS_EXPLORATION)
    main, secondary = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD" and not k.startswith("FRONTRUN_")}
    env.update(TERM="xterm", COLUMNS="120")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:timeout"],
        cwd=pytester.path,
        stdin=subprocess.DEVNULL,
        stdout=secondary,
        stderr=secondary,
        env=env,
    )
    os.close(secondary)
    chunks: list[bytes] = []
    interrupted = False
    while True:
        ready, _, _ = select.select([main], [], [], 60)
        assert ready, b"".join(chunks).decode()
        try:
            data = os.read(main, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
        if not interrupted and len(PROGRESS.findall(b"".join(chunks).decode("utf-8", "replace"))) >= 2:
            proc.send_signal(signal.SIGINT)  # as Ctrl-C does
            interrupted = True
    os.close(main)
    proc.wait(timeout=60)
    out = b"".join(chunks).decode("utf-8", "replace")
    assert interrupted, out
    assert ", done" not in out, out
    ended = re.search(r"\rfrontrun: ([\d,]+) executions explored, [\d,]+/s, \d+\.\ds elapsed, interrupted", out)
    assert ended, out
    section = out.split("= frontrun =", 1)[1]
    assert re.search(r"^explorations run: 1\s*$", section, re.M), section
    assert re.search(r"^explorations interrupted: 1\s*$", section, re.M), section
    executions = int(re.search(r"^executions explored: (\d+)\s*$", section, re.M).group(1))
    assert executions == int(ended.group(1).replace(",", "")) > 0
