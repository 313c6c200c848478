"""The pytest plugin, registered through the ``pytest11`` entry point.

It is loaded by every pytest run in an environment where frontrun is
installed, so a run in which no test explores must not notice it: it
imports nothing heavy (the explorer and the native module load when a test
first uses them), replaces nothing, and prints nothing. What it does:

* the cooperative locks, events and queues (``frontrun._coop``) stand in
  for the real ones only while an exploration runs; a lock the program made
  earlier (at import time) is wrapped then (``frontrun._adopt``).
  ``--frontrun-patch-locks`` installs them before collection instead (so
  module-level events, conditions and queues are covered too);
  ``--no-frontrun-patch-locks`` leaves earlier locks alone;
* with ``-v`` (or one of its options) it says in the header whether
  ``libfrontrun_io.so`` is loaded; the explorer attaches to its ring by
  itself. Nothing is skipped either way;
* ``--frontrun-max-executions`` and ``--frontrun-report DIR`` become the
  defaults of every ``explore_dpor`` call that does not set them;
  ``--frontrun-trace-packages`` and ``--frontrun-skip-packages`` (and the
  ini settings ``frontrun_trace_packages``, ``frontrun_skip_packages``) add
  their patterns to every call's;
* on a terminal, an exploration running longer than a second shows a live
  progress line;
* when an exploration ran (or with ``-v``), the terminal summary gets a
  ``frontrun`` section with totals (under pytest-xdist, the workers'
  totals added up) and the notices that would otherwise be warnings;
* under pytest-xdist, each worker gets its own event ring
  (``pytest_xdist_setupnodes``), so no worker drains another's events;
* explanations and reports name the project's files relative to the
  pytest rootdir.
"""

from __future__ import annotations

import dataclasses
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
        "collection (by default they stand in only while an exploration runs)",
    )
    group.addoption(
        "--no-frontrun-patch-locks",
        action="store_false",
        dest="frontrun_patch_locks",
        help="do not wrap the real locks created before an exploration starts",
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
    """Patch the cooperative primitives in if asked; returns what the header says."""
    wanted = config.getoption("frontrun_patch_locks")
    if wanted is False:
        return "only during explorations, earlier locks left real (--no-frontrun-patch-locks)"
    if not wanted:
        return "only during explorations"
    try:
        from frontrun import _coop  # type: ignore[attr-defined]
    except ImportError:
        raise pytest.UsageError(
            "--frontrun-patch-locks: this build of frontrun has no cooperative primitives (frontrun._coop)"
        ) from None
    _coop.install()
    config.stash[_coop_key] = _coop
    return "patched before collection (--frontrun-patch-locks)"


_coop_key = pytest.StashKey[Any]()
_status_key = pytest.StashKey[str]()
_saved_key = pytest.StashKey[Any]()
#: Key of this plugin's totals in pytest-xdist's ``workeroutput``.
WORKER_OUTPUT_KEY = "frontrun_totals"


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
        adopt_locks=config.getoption("frontrun_patch_locks") is not False,
        notices_to_session=True,
        project_root=str(config.rootpath),
    )
    progress = config.stash[_progress_key] = _ProgressLine(config)
    config.stash[_saved_key] = _stats.begin_session(defaults, progress)
    _CONFIGS.append(config)
    config.stash[_status_key] = _install_coop(config)


_progress_key = pytest.StashKey["_ProgressLine"]()


def pytest_keyboard_interrupt(excinfo: Any) -> None:
    config = _CONFIGS[-1] if _CONFIGS else None
    if config is not None:
        config.stash[_progress_key].flush_pending()


#: Sessions in progress, innermost last (a test may run pytest in-process).
_CONFIGS: list[pytest.Config] = []


def pytest_unconfigure(config: pytest.Config) -> None:
    if config in _CONFIGS:
        _CONFIGS.remove(config)
    saved = config.stash.get(_saved_key, None)
    if saved is not None:
        _stats.end_session(saved)
        del config.stash[_saved_key]
    coop = config.stash.get(_coop_key, None)
    if coop is not None:
        coop.uninstall()
        del config.stash[_coop_key]


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_setupnodes(config: pytest.Config, specs: Any) -> None:
    # The preload library publishes its ring in FRONTRUN_RING for child
    # processes; workers that inherited it would all attach to the
    # controller's ring and drain each other's events. Without it, the
    # library creates a private ring in each worker. (The controller runs
    # no tests, so it needs the variable for nothing else.)
    from frontrun._env import ENV_RING

    os.environ.pop(ENV_RING, None)


def pytest_sessionfinish(session: pytest.Session) -> None:
    output = getattr(session.config, "workeroutput", None)
    if output is not None:  # a pytest-xdist worker: hand the totals over
        output[WORKER_OUTPUT_KEY] = dataclasses.asdict(_stats.TOTALS)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    totals = getattr(node, "workeroutput", {}).get(WORKER_OUTPUT_KEY)
    if totals:
        _stats.TOTALS.add(_stats.Totals(**totals))


def _preload_status() -> str:
    from frontrun import _runtime_hooks
    from frontrun._env import ENV_ACTIVE
    from frontrun._paths import preload_loaded

    if _runtime_hooks.installed():
        return "hooks installed at run time (no LD_PRELOAD)"
    if not preload_loaded():
        return "not loaded (hooks are installed at run time when an exploration detects I/O)"
    if os.environ.get(ENV_ACTIVE) == "1":
        return "loaded (started by `frontrun`)"
    return "loaded (LD_PRELOAD)"


def _asked(config: pytest.Config) -> bool:
    """Whether the user asked to hear from frontrun even if nothing explores."""
    return config.get_verbosity() > 0 or config.getoption("frontrun_patch_locks") is not None


def pytest_report_header(config: pytest.Config) -> list[str]:
    if not _asked(config):
        return []
    status = config.stash.get(_status_key, "only during explorations")
    return [f"frontrun: preload library {_preload_status()}; cooperative primitives {status}"]


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    totals = _stats.TOTALS
    if totals.explorations == 0 and not _asked(config):
        return
    write = terminalreporter.write_line
    terminalreporter.section("frontrun")
    write(f"preload library: {_preload_status()}")
    write(f"cooperative primitives: {config.stash.get(_status_key, 'only during explorations')}")
    write(f"explorations run: {totals.explorations}")
    if totals.interrupted:
        write(f"explorations interrupted: {totals.interrupted}")
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
    for text in totals.notices:
        write(f"note: {text}")
    for note in totals.notes:
        write(f"note: {note}")


class _ProgressLine:
    """Shows ``executions, executions/s, elapsed`` for a long exploration,
    on its own line, rewritten in place; only when output is a terminal."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.shown = False
        self.last = 0.0
        #: The closing line of an exploration stopped by Ctrl-C, not yet written.
        self.pending = ""

    def flush_pending(self) -> None:
        if self.pending:
            text, self.pending = self.pending, ""
            self._write(text)

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

    def __call__(self, executions: int, elapsed: float, outcome: str | BaseException | None) -> None:
        if outcome is not None:
            if self.shown:
                if isinstance(outcome, str):
                    ending = f"; {outcome}"
                elif isinstance(outcome, KeyboardInterrupt):
                    # Ctrl-C may have struck inside the capture manager's own
                    # switching; pytest_keyboard_interrupt writes this line
                    # once pytest has taken the interrupt in hand.
                    self.pending = f"\r{self._text(executions, elapsed)}, interrupted\n"
                    ending = ""
                else:
                    ending = f", stopped by {type(outcome).__name__}"
                if ending:
                    self._write(f"\r{self._text(executions, elapsed)}{ending}\n")
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
