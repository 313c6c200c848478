"""Which code gets traced.

Only the user's own code is traced: not the standard library, not installed
packages, not frontrun itself. The tracer asks once per code object and
caches the answer, so this runs rarely and may be written plainly.
"""

from __future__ import annotations

import fnmatch
import functools
import os
import sys
import types
from collections.abc import Iterable

_FRONTRUN_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


@functools.lru_cache(maxsize=1)
def _library_dirs() -> tuple[str, ...]:
    # (sysconfig would say the same, but its first call costs milliseconds.)
    dirs = {os.path.dirname(os.path.abspath(os.__file__)) + os.sep}
    for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}:
        dirs.add(os.path.join(os.path.abspath(prefix), "lib") + os.sep)
        dirs.add(os.path.join(os.path.abspath(prefix), "lib64") + os.sep)
    for path in sys.path:
        if path.endswith(("site-packages", "dist-packages")):
            dirs.add(os.path.abspath(path) + os.sep)
    return tuple(sorted(dirs))


class TraceFilter:
    """Decides whether a code object belongs to the code under test.

    ``trace_packages`` holds fnmatch patterns over module names (``"mylib.*"``)
    whose code is traced even when installed as a library.
    """

    def __init__(self, trace_packages: Iterable[str] = ()) -> None:
        self.patterns = tuple(trace_packages)
        self.library_dirs = _library_dirs()

    def wants_module(self, module: str | None) -> bool:
        return module is not None and any(fnmatch.fnmatchcase(module, p) for p in self.patterns)

    def wants_file(self, filename: str) -> bool:
        """True for files of user code (dynamic ``<...>`` code is decided elsewhere)."""
        if filename.startswith("<"):
            return False
        path = os.path.abspath(filename)
        if path.startswith(_FRONTRUN_DIR):
            return False
        return not path.startswith(self.library_dirs)

    def wants(self, code: types.CodeType, module: str | None) -> bool:
        if self.wants_module(module):
            return True
        return self.wants_file(code.co_filename)


def is_dynamic(code: types.CodeType) -> bool:
    """Code compiled from a string (``exec``, ``eval``, generated methods)."""
    name = code.co_filename
    return name.startswith("<") and not name.startswith("<frozen")
