"""frontrun: find race conditions in Python code and the native code it calls.

Concurrent callables run under frontrun's own scheduler, which explores the
distinct interleavings of their conflicting operations and reports, when an
invariant breaks, a schedule that replays the failure.

The public names are imported on first use: the pytest plugin imports this
package at start-up in every test run, and should not load the native
module or the explorer before a test needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from frontrun._version import __version__

if TYPE_CHECKING:
    from frontrun._async import explore_async, replay_async
    from frontrun._notices import FrontrunWarning
    from frontrun._paths import preload_path
    from frontrun._reproduce import reproduce
    from frontrun._result import InconclusiveError, InterleavingResult, ReplayResult
    from frontrun.dpor import explore_dpor, record_accesses, replay

#: Public name -> module that defines it.
_EXPORTS = {
    "FrontrunWarning": "frontrun._notices",
    "InconclusiveError": "frontrun._result",
    "InterleavingResult": "frontrun._result",
    "ReplayResult": "frontrun._result",
    "explore_async": "frontrun._async",
    "explore_dpor": "frontrun.dpor",
    "preload_path": "frontrun._paths",
    "record_accesses": "frontrun.dpor",
    "replay": "frontrun.dpor",
    "replay_async": "frontrun._async",
    "reproduce": "frontrun._reproduce",
}

__all__ = [
    "FrontrunWarning",
    "InconclusiveError",
    "InterleavingResult",
    "ReplayResult",
    "__version__",
    "explore_async",
    "explore_dpor",
    "preload_path",
    "record_accesses",
    "replay",
    "replay_async",
    "reproduce",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'frontrun' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
