"""frontrun: find race conditions in Python code and the native code it calls.

Concurrent callables run under frontrun's own scheduler, which explores the
distinct interleavings of their conflicting operations and reports, when an
invariant breaks, a schedule that replays the failure.
"""

from __future__ import annotations

from frontrun._paths import preload_path
from frontrun._version import __version__

__all__ = ["__version__", "preload_path"]
