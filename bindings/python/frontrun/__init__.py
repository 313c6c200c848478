"""frontrun: find race conditions in Python code and the native code it calls.

Concurrent callables run under frontrun's own scheduler, which explores the
distinct interleavings of their conflicting operations and reports, when an
invariant breaks, a schedule that replays the failure.
"""

from __future__ import annotations

from frontrun._paths import preload_path
from frontrun._result import InterleavingResult
from frontrun._version import __version__
from frontrun.dpor import ReplayResult, explore_dpor, record_accesses, replay

__all__ = [
    "InterleavingResult",
    "ReplayResult",
    "__version__",
    "explore_dpor",
    "preload_path",
    "record_accesses",
    "replay",
]
