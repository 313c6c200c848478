"""Which code gets traced.

By default: the program under test and the third-party packages it calls
(whatever lives in ``site-packages``/``dist-packages`` or elsewhere outside
the interpreter's own library), but not the standard library, not frontrun
itself, and not the database clients whose wire protocol frontrun decodes
(``PROTOCOL_CLIENTS``). ``trace_packages`` adds modules (stdlib ones included),
``skip_packages`` removes some; both hold fnmatch patterns over module
names. Each exploration's tracer asks once per code object, and the
answer for a file and module is kept here (it depends on nothing else), so
later explorations and replays ask a dictionary.
"""

from __future__ import annotations

import fnmatch
import functools
import os
import sys
import types
from collections.abc import Iterable
from typing import cast

_FRONTRUN_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep

#: Client libraries of the protocols the I/O layer decodes (PostgreSQL,
#: MySQL/MariaDB, Redis: see docs/databases.md). Their traffic is already
#: seen as reads and writes of rows and keys; their Python internals add
#: only bookkeeping shared by every connection (psycopg's adapter
#: templates, redis-py's lazily set metrics global), which would make
#: every pair of queries conflict, and objects reached through module
#: globals, whose keys are not stable across executions. Named in
#: ``trace_packages``, they are traced.
PROTOCOL_CLIENTS = ("psycopg.*", "psycopg2.*", "psycopg_pool.*", "pymysql.*", "MySQLdb.*", "redis.*")
_PACKAGE_DIR_NAMES = ("site-packages", "dist-packages")


@functools.lru_cache(maxsize=1)
def _stdlib_dirs() -> tuple[str, ...]:
    """Directories of the standard library (pure-Python and extension
    modules), for every prefix this interpreter answers to."""
    # (sysconfig would say the same, but its first call costs milliseconds.)
    version = "python{}.{}".format(*sys.version_info[:2])
    dirs = {os.path.dirname(os.path.abspath(os.__file__)) + os.sep}
    for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}:
        for lib in ("lib", "lib64"):
            dirs.add(os.path.join(os.path.abspath(prefix), lib, version) + os.sep)
    return tuple(sorted(dirs))


def _is_package_dir_path(path: str) -> bool:
    parts = path.split(os.sep)
    return any(name in parts for name in _PACKAGE_DIR_NAMES)


def _patterns(parameter: str, value: object) -> tuple[str, ...]:
    if isinstance(value, (str, bytes)):
        raise TypeError(
            f"{parameter} must be a list of module name patterns, got the string {value!r}; "
            f"write {parameter}=[{value!r}]"
        )
    try:
        items = tuple(cast("Iterable[object]", value))
    except TypeError:
        raise TypeError(f"{parameter} must be a list of module name patterns, got {type(value).__name__}") from None
    patterns: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"{parameter} must hold module name patterns (str), got {item!r} ({type(item).__name__})")
        patterns.append(item)
    return tuple(patterns)


def _matches(module: str, pattern: str) -> bool:
    # "pkg.*" names a package with everything in it, its __init__ included
    # (whose module name is plain "pkg").
    if pattern.endswith(".*") and module == pattern[:-2]:
        return True
    return fnmatch.fnmatchcase(module, pattern)


class TraceFilter:
    """Decides whether a code object belongs to the code under test.

    ``trace_packages`` and ``skip_packages`` hold fnmatch patterns over module
    names (``"mylib.*"`` covers ``mylib`` and its submodules). A module named
    by ``trace_packages`` is traced even if ``skip_packages`` names it too,
    so ``skip_packages=["lib.*"], trace_packages=["lib.pool"]`` traces only
    ``lib.pool`` of ``lib``.
    """

    def __init__(self, trace_packages: Iterable[str] = (), skip_packages: Iterable[str] = ()) -> None:
        self.patterns = _patterns("trace_packages", trace_packages)
        self.skip_patterns = _patterns("skip_packages", skip_packages)
        self._skip_all = self.skip_patterns + PROTOCOL_CLIENTS
        self.stdlib_dirs = _stdlib_dirs()
        self._answers: dict[tuple[str, str | None], bool] = {}

    def wants_module(self, module: str | None) -> bool:
        return module is not None and any(_matches(module, p) for p in self.patterns)

    def skips_module(self, module: str | None) -> bool:
        return module is not None and any(_matches(module, p) for p in self._skip_all)

    def wants_file(self, filename: str) -> bool:
        """True for files of the program and of third-party packages (dynamic
        ``<...>`` code is decided elsewhere)."""
        if filename.startswith("<"):
            return False
        path = os.path.abspath(filename)
        if path.startswith(_FRONTRUN_DIR):
            return False
        if _is_package_dir_path(path):
            return True
        return not path.startswith(self.stdlib_dirs)

    def wants(self, code: types.CodeType, module: str | None) -> bool:
        key = (code.co_filename, module)
        answer = self._answers.get(key)
        if answer is None:
            answer = self._answers[key] = self._decide(code.co_filename, module)
        return answer

    def _decide(self, filename: str, module: str | None) -> bool:
        if self.wants_module(module):
            return True
        if self.skips_module(module):
            return False
        return self.wants_file(filename)


def is_dynamic(code: types.CodeType) -> bool:
    """Code compiled from a string (``exec``, ``eval``, generated methods)."""
    name = code.co_filename
    return name.startswith("<") and not name.startswith("<frozen")
