"""The pytest plugin, registered through the ``pytest11`` entry point.

It is loaded by every pytest run in an environment where frontrun is
installed, so it imports nothing heavy: the explorer and the native module
load when a test first uses them. What it does:

* before collection, it makes the cooperative locks, events and queues
  (``frontrun._coop``) stand in for the real ones, so locks created at
  module level by the code under test are covered too
  (``--no-frontrun-patch-locks`` leaves them alone);
* it says in the header whether ``libfrontrun_io.so`` is loaded (started as
  ``LD_PRELOAD=... pytest`` or ``frontrun pytest``); the explorer attaches
  to its ring by itself. Nothing is skipped either way: without the library
  native I/O is simply not seen;
* ``--frontrun-max-executions`` and ``--frontrun-report DIR`` become the
  defaults of every ``explore_dpor`` call that does not set them;
  ``--frontrun-trace-packages`` and ``--frontrun-skip-packages`` (and the
  ini settings ``frontrun_trace_packages``, ``frontrun_skip_packages``) add
  their patterns to every call's;
* on a terminal, an exploration running longer than a second shows a live
  progress line;
* the terminal summary gets a ``frontrun`` section with totals.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from frontrun import _stats

_PATCHED_KEY = "frontrun_patch_state"
#: Explorations shorter than this show no progress line.
PROGRESS_AFTER = 1.0
#: Seconds between two updates of the progress line.
PROGRESS_EVERY = 0.2


def _positive_int(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of executions, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    from frontrun._args import MAX_U64

    if value > MAX_U64:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_U64}, got {value}")
    return value


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("frontrun", "frontrun race finder")
    group.addoption(
        "--frontrun-patch-locks",
        action="store_true",
        dest="frontrun_patch_locks",
        default=None,
        help="replace threading locks, events and queues with frontrun's cooperative ones before "
        "collection (the default)",
    )
    group.addoption(
        "--no-frontrun-patch-locks",
        action="store_false",
        dest="frontrun_patch_locks",
        help="leave threading's locks, events and queues alone",
    )
    group.addoption(
        "--frontrun-max-executions",
        type=_positive_int,
        default=None,
        metavar="N",
        help="explore at most N executions in each explore_dpor call that sets no max_executions",
    )
    group.addoption(
        "--frontrun-report",
        default=None,
        metavar="DIR",
        help="write an HTML report of each failing exploration into DIR",
    )
    group.addoption(
        "--frontrun-trace-packages",
        action="append",
        default=[],
        metavar="PATTERNS",
        help="also trace these modules (comma-separated fnmatch patterns, 'json.*' for a package "
        "and its submodules), e.g. standard-library ones; may be repeated",
    )
    group.addoption(
        "--frontrun-skip-packages",
        action="append",
        default=[],
        metavar="PATTERNS",
        help="do not trace these modules (comma-separated fnmatch patterns); third-party packages "
        "are traced by default; may be repeated",
    )
    parser.addini(
        "frontrun_trace_packages",
        type="linelist",
        default=[],
        help="module patterns frontrun traces besides the program and third-party packages",
    )
    parser.addini(
        "frontrun_skip_packages",
        type="linelist",
        default=[],
        help="module patterns frontrun does not trace",
    )


def _package_patterns(config: pytest.Config, name: str) -> tuple[str, ...]:
    """The ini setting's patterns, then the command line's."""
    out: list[str] = []
    for line in [*config.getini(f"frontrun_{name}"), *config.getoption(f"frontrun_{name}")]:
        out.extend(p.strip() for p in line.replace(",", " ").split() if p.strip())
    return tuple(out)


def _install_coop(config: pytest.Config) -> str:
    """Patch the cooperative primitives in; returns what the header says."""
    wanted = config.getoption("frontrun_patch_locks")
    if wanted is False:
        return "not patched (--no-frontrun-patch-locks)"
    try:
        from frontrun import _coop  # type: ignore[attr-defined]
    except ImportError:
        if wanted:
            raise pytest.UsageError(
                "--frontrun-patch-locks: this build of frontrun has no cooperative primitives (frontrun._coop)"
            ) from None
        return "not available in this build"
    _coop.install()
    config.stash[_coop_key] = _coop
    return "patched"


_coop_key = pytest.StashKey[Any]()
_status_key = pytest.StashKey[str]()
_saved_key = pytest.StashKey[Any]()


def _check_report_option(report: str | None) -> None:
    # Found now rather than when the first race of the run is written up.
    if report is None:
        return
    from frontrun._args import writable_directory_problem

    problem = writable_directory_problem(report)
    if problem is not None:
        raise pytest.UsageError(f"--frontrun-report {report}: {problem}")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    report = config.getoption("frontrun_report")
    _check_report_option(report)
    defaults = _stats.Defaults(
        max_executions=config.getoption("frontrun_max_executions"),
        report_dir=os.path.abspath(report) if report else None,
        trace_packages=_package_patterns(config, "trace_packages"),
        skip_packages=_package_patterns(config, "skip_packages"),
    )
    config.stash[_saved_key] = _stats.begin_session(defaults, _ProgressLine(config))
    config.stash[_status_key] = _install_coop(config)


def pytest_unconfigure(config: pytest.Config) -> None:
    saved = config.stash.get(_saved_key, None)
    if saved is not None:
        _stats.end_session(saved)
        del config.stash[_saved_key]
    coop = config.stash.get(_coop_key, None)
    if coop is not None:
        coop.uninstall()
        del config.stash[_coop_key]


def _preload_status() -> str:
    from frontrun._paths import preload_loaded
    from frontrun.cli import ENV_ACTIVE

    if not preload_loaded():
        return "not loaded (native I/O is not seen; run under `frontrun pytest` to see it)"
    if os.environ.get(ENV_ACTIVE) == "1":
        return "loaded (started by `frontrun`)"
    return "loaded (LD_PRELOAD)"


def pytest_report_header(config: pytest.Config) -> list[str]:
    status = config.stash.get(_status_key, "not patched")
    return [f"frontrun: preload library {_preload_status()}; cooperative primitives {status}"]


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    totals = _stats.TOTALS
    write = terminalreporter.write_line
    terminalreporter.section("frontrun")
    write(f"preload library: {_preload_status()}")
    write(f"cooperative primitives: {config.stash.get(_status_key, 'not patched')}")
    write(f"explorations run: {totals.explorations}")
    write(f"executions explored: {totals.executions}")
    write(f"races found: {totals.races}")
    write(f"inconclusive (executions given up, nothing proven): {totals.inconclusive}")
    write(f"held only within a preemption bound: {totals.bounded}")
    write(f"stopped by a budget before exhausting the search: {totals.cut_short}")
    write(f"C-level events seen: {totals.native_events}")
    write(f"events lost: {totals.events_lost}")
    for unseen in sorted(totals.unseen_statements):
        write(f"statements not seen: {unseen} (counted as writes to the whole server)")
    for path in totals.reports:
        write(f"HTML report: {path}")
    for note in totals.notes:
        write(f"note: {note}")


class _ProgressLine:
    """Shows ``executions, executions/s, elapsed`` for a long exploration,
    on its own line, rewritten in place; only when output is a terminal."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.shown = False
        self.last = 0.0

    def _write(self, text: str) -> None:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        capture = self.config.pluginmanager.get_plugin("capturemanager")
        if reporter is None:
            return
        if capture is not None:
            with capture.global_and_fixture_disabled():
                reporter.write(text, flush=True)
        else:
            reporter.write(text, flush=True)

    def _is_terminal(self) -> bool:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        return reporter is not None and bool(reporter.isatty)

    def __call__(self, executions: int, elapsed: float, outcome: str | None) -> None:
        if outcome is not None:
            if self.shown:
                self._write(f"\r{self._text(executions, elapsed)}; {outcome}\n")
            self.shown = False
            self.last = 0.0
            return
        if elapsed < PROGRESS_AFTER or elapsed - self.last < PROGRESS_EVERY or not self._is_terminal():
            return
        if not self.shown:
            self._write("\n")
            self.shown = True
        self.last = elapsed
        self._write(f"\r{self._text(executions, elapsed)}")

    @staticmethod
    def _text(executions: int, elapsed: float) -> str:
        rate = executions / elapsed if elapsed > 0 else 0.0
        return f"frontrun: {executions:,} executions explored, {rate:,.0f}/s, {elapsed:.1f}s elapsed"
