"""The table of bad arguments: every public entry point, every parameter.

Each row is one call with one bad value, the exception it must raise and a
fragment of its message (which must name the parameter). A parameter added
to a public function needs its rows here: ``test_bad_arguments`` fails for
any parameter without one.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class Counter:
    def __init__(self) -> None:
        self.value = 0


def incr(c: Counter) -> None:
    c.value += 1


def holds(c: Counter) -> bool:
    return True


@dataclass(frozen=True)
class Bad:
    #: ``explore_dpor``, ``replay``, ``record_accesses`` or ``reproduce``.
    call: str
    parameter: str
    #: The value, or a :class:`Make` that builds it for each run (for values
    #: that are used up, such as generators).
    value: Any
    error: type[BaseException]
    #: Must appear in ``str(exception)``.
    fragment: str

    @property
    def id(self) -> str:
        shown = self.value.build.__name__ if isinstance(self.value, Make) else repr(self.value)[:30]
        return f"{self.call}-{self.parameter}={shown}"

    def fresh_value(self) -> Any:
        return self.value.build() if isinstance(self.value, Make) else self.value


@dataclass(frozen=True)
class Make:
    build: Callable[[], Any]


def _generator() -> Any:
    return (f for f in [incr, incr])


def _file_as_parent() -> str:
    # A regular file where a directory would have to be.
    return os.path.join(__file__, "reports")


BIG = 10**30
NAN = math.nan
INF = math.inf

SECONDS = [
    (0, ValueError, "must be > 0 seconds"),
    (-1, ValueError, "must be > 0 seconds"),
    (NAN, ValueError, "must be > 0 seconds, got nan"),
    (INF, ValueError, "must be at most 31536000 seconds"),
    (1e300, ValueError, "must be at most 31536000 seconds"),
    (1e19, ValueError, "must be at most 31536000 seconds"),
    ("5", TypeError, "must be a number of seconds, got str"),
    (True, TypeError, "must be a number of seconds, got bool"),
]


def _seconds(call: str, parameter: str) -> list[Bad]:
    return [Bad(call, parameter, v, e, f"{parameter} {m}") for v, e, m in SECONDS]


TABLE: list[Bad] = [
    # -- explore_dpor --------------------------------------------------------
    Bad("explore_dpor", "setup", 3, TypeError, "setup must be callable, got int"),
    Bad("explore_dpor", "invariant", "no", TypeError, "invariant must be callable, got str"),
    Bad("explore_dpor", "threads", [], ValueError, "threads must contain at least one callable"),
    Bad("explore_dpor", "threads", incr, TypeError, "threads must be a list or tuple of callables"),
    Bad("explore_dpor", "threads", [incr, 5], TypeError, "threads[1] must be callable, got int"),
    Bad("explore_dpor", "threads", {incr}, TypeError, "threads must be a list or tuple of callables, got set"),
    Bad("explore_dpor", "threads", {0: incr}, TypeError, "got dict"),
    Bad("explore_dpor", "threads", Make(_generator), TypeError, "got generator"),
    Bad("explore_dpor", "threads", "ab", TypeError, "got str"),
    Bad("explore_dpor", "max_executions", 0, ValueError, "max_executions must be >= 1"),
    Bad("explore_dpor", "max_executions", BIG, ValueError, "max_executions must be at most 18446744073709551615"),
    Bad("explore_dpor", "max_executions", 1.5, TypeError, "max_executions must be an int or None"),
    Bad("explore_dpor", "max_executions", True, TypeError, "max_executions must be an int or None, got bool"),
    Bad("explore_dpor", "preemption_bound", -1, ValueError, "preemption_bound must be >= 0"),
    Bad("explore_dpor", "preemption_bound", BIG, ValueError, "preemption_bound must be at most 4294967295"),
    Bad("explore_dpor", "preemption_bound", "2", TypeError, "preemption_bound must be an int or None"),
    Bad("explore_dpor", "max_branches", -5, ValueError, "max_branches must be >= 1"),
    Bad("explore_dpor", "max_branches", BIG, ValueError, "max_branches must be at most 18446744073709551615"),
    Bad("explore_dpor", "max_branches", None, TypeError, "max_branches must be an int, got NoneType"),
    *_seconds("explore_dpor", "timeout_per_run"),
    *_seconds("explore_dpor", "deadlock_timeout"),
    Bad("explore_dpor", "total_timeout", "soon", TypeError, "total_timeout must be a number of seconds"),
    Bad("explore_dpor", "total_timeout", 0, ValueError, "total_timeout must be > 0 seconds"),
    Bad("explore_dpor", "total_timeout", NAN, ValueError, "total_timeout must be > 0 seconds"),
    Bad("explore_dpor", "total_timeout", INF, ValueError, "total_timeout must be at most 31536000 seconds"),
    Bad("explore_dpor", "reproduce_on_failure", -1, ValueError, "reproduce_on_failure must be >= 0"),
    Bad("explore_dpor", "reproduce_on_failure", BIG, ValueError, "reproduce_on_failure must be at most"),
    Bad("explore_dpor", "reproduce_on_failure", 2.0, TypeError, "reproduce_on_failure must be an int"),
    Bad("explore_dpor", "stop_on_first", "no", TypeError, "stop_on_first must be True or False, got 'no'"),
    Bad("explore_dpor", "stop_on_first", 0, TypeError, "stop_on_first must be True or False, got 0"),
    Bad("explore_dpor", "detect_io", "no", TypeError, "detect_io must be True or False, got 'no' (str)"),
    Bad("explore_dpor", "detect_io", None, TypeError, "detect_io must be True or False, got None"),
    Bad("explore_dpor", "virtual_time", "no", TypeError, "virtual_time must be True or False, got 'no' (str)"),
    Bad("explore_dpor", "virtual_time", 1, TypeError, "virtual_time must be True or False, got 1 (int)"),
    Bad("explore_dpor", "report_dir", 3, TypeError, "report_dir must be a directory path, got int"),
    Bad("explore_dpor", "report_dir", b"/tmp", TypeError, "report_dir must be a directory path, got bytes"),
    Bad("explore_dpor", "report_dir", "", ValueError, "report_dir '': an empty path names no directory"),
    Bad("explore_dpor", "report_dir", Make(_file_as_parent), ValueError, "is not a directory"),
    Bad("explore_dpor", "report_dir", "/proc/frontrun-reports", ValueError, "cannot create a directory in /proc"),
    Bad(
        "explore_dpor",
        "trace_packages",
        [1],
        TypeError,
        "trace_packages",
    ),
    Bad(
        "explore_dpor",
        "trace_packages",
        "mypkg",
        TypeError,
        "trace_packages",
    ),
    Bad(
        "explore_dpor",
        "skip_packages",
        [None],
        TypeError,
        "skip_packages must hold module name patterns (str), got None",
    ),
    Bad("explore_dpor", "skip_packages", "mylib", TypeError, "skip_packages must be a list of module name patterns"),
    # -- replay ----------------------------------------------------------------
    Bad("replay", "schedule", "v1:", ValueError, "schedule is empty"),
    Bad("replay", "schedule", [], ValueError, "schedule is empty"),
    Bad("replay", "schedule", [0, 7], ValueError, "schedule[1] = 7 is not a thread index below 2"),
    Bad("replay", "schedule", [0, True], ValueError, "schedule[1] = True is not a thread index"),
    Bad("replay", "schedule", 3, TypeError, "schedule must be a replay token (str) or a list of thread indexes"),
    Bad("replay", "schedule", "fr1.aaaa", ValueError, "replay token 'fr1.aaaa' fails its checksum"),
    Bad("replay", "schedule", "v9:nonsense", ValueError, "v9:nonsense"),
    Bad("replay", "setup", None, TypeError, "setup must be callable, got NoneType"),
    Bad("replay", "threads", {incr}, TypeError, "threads must be a list or tuple of callables, got set"),
    Bad("replay", "invariant", 3, TypeError, "invariant must be callable, got int"),
    *_seconds("replay", "timeout"),
    *_seconds("replay", "deadlock_timeout"),
    Bad("replay", "detect_io", "no", TypeError, "detect_io must be True or False"),
    Bad("replay", "virtual_time", None, TypeError, "virtual_time must be True or False"),
    Bad(
        "replay",
        "trace_packages",
        [None],
        TypeError,
        "trace_packages",
    ),
    Bad("replay", "skip_packages", [None], TypeError, "skip_packages must hold module name patterns (str), got None"),
    Bad("replay", "skip_packages", "mylib", TypeError, "skip_packages must be a list of module name patterns"),
    # -- record_accesses ---------------------------------------------------------
    Bad("record_accesses", "setup", 3, TypeError, "setup must be callable"),
    Bad("record_accesses", "threads", Make(_generator), TypeError, "got generator"),
    Bad("record_accesses", "detect_io", "yes", TypeError, "detect_io must be True or False"),
    Bad(
        "record_accesses",
        "trace_packages",
        [1],
        TypeError,
        "trace_packages",
    ),
    Bad(
        "record_accesses",
        "skip_packages",
        [None],
        TypeError,
        "skip_packages must hold module name patterns (str), got None",
    ),
    Bad("record_accesses", "skip_packages", "mylib", TypeError, "skip_packages must be a list of module name patterns"),
    # -- reproduce -----------------------------------------------------------------
    Bad("reproduce", "token", 3, TypeError, "reproduce() takes the token string"),
    Bad("reproduce", "token", "v1:", ValueError, "reproduce(): the token 'v1:' has no steps"),
    Bad("reproduce", "token", "fr1.", ValueError, "replay token 'fr1.'"),
]

#: Arguments that make each call valid; a row replaces one of them.
GOOD: dict[str, Callable[[], dict[str, Any]]] = {
    "explore_dpor": lambda: {
        "setup": Counter,
        "threads": [incr, incr],
        "invariant": holds,
        "detect_io": False,
        "max_executions": 1,
        "reproduce_on_failure": 0,
    },
    "replay": lambda: {
        "schedule": [0, 1],
        "setup": Counter,
        "threads": [incr, incr],
        "invariant": holds,
        "detect_io": False,
    },
    "record_accesses": lambda: {"setup": Counter, "threads": [incr, incr], "detect_io": False},
    "reproduce": lambda: {"token": "v1:0,1"},
}
