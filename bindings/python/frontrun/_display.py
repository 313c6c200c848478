"""How source files and native resources are named for people.

A bare file name is ambiguous as soon as a program has packages (every
package has an ``__init__.py``), and an absolute path is long and says more
about the machine than about the program. Explanations and reports
therefore name a file by the path a reader would look it up by:

* a file of an installed package, relative to the ``site-packages`` (or
  ``dist-packages``) directory it was imported from:
  ``cachetools/__init__.py``;
* a file of the standard library, relative to the library's directory:
  ``threading.py``, ``concurrent/futures/thread.py``;
* a file of the project, relative to the project root: the pytest rootdir
  when the plugin is active (``_stats.DEFAULTS.project_root``), else the
  current directory: ``tests/test_stock.py``;
* anything else relative to the ``sys.path`` entry it sits under, or as the
  code object names it (``<string>``, a path outside all of these).

Native resources come named by the preload library; one family of them is
internal: the commit-ordering pseudo-tables ``<commits:T>`` through which a
transaction's snapshot is ordered against commits to ``T`` (see the SQL
classifier of the engine's ``wire`` module). A reader knows the table, not
the pseudo-table, so they are shown as the table or row they stand for.
"""

from __future__ import annotations

import os
import re
import site
import sys
import sysconfig

from frontrun import _stats

#: The preload library's name for the commit order of a table (or a row of
#: it): ``sql:<commits:accounts>#id=1``, optionally with a server before the
#: table (``sql:localhost:5432/<commits:accounts>``).
_COMMITS = re.compile(r"<commits:([^>]*)>")


def _library_dirs() -> list[str]:
    """Directories whose files are named relative to them before the
    project root is tried: installed packages and the standard library."""
    dirs: list[str] = []
    try:
        dirs.extend(site.getsitepackages())
    except AttributeError:  # some embedded interpreters have no site.getsitepackages
        pass
    user = site.getusersitepackages() if hasattr(site, "getusersitepackages") else None
    if user:
        dirs.append(user)
    paths = sysconfig.get_paths()
    dirs.extend(paths[name] for name in ("purelib", "platlib", "stdlib", "platstdlib") if name in paths)
    dirs.extend(p for p in sys.path if os.path.basename(p.rstrip(os.sep)) in ("site-packages", "dist-packages"))
    return [os.path.normpath(os.path.abspath(d)) for d in dirs if d]


def _relative_to(path: str, directory: str) -> str | None:
    if directory and path.startswith(directory.rstrip(os.sep) + os.sep):
        return path[len(directory.rstrip(os.sep)) + 1 :]
    return None


def _shortest(path: str, directories: list[str]) -> str | None:
    """``path`` relative to the deepest of ``directories`` that holds it."""
    best: str | None = None
    for directory in directories:
        rel = _relative_to(path, directory)
        if rel is not None and (best is None or len(rel) < len(best)):
            best = rel
    return best


def project_root() -> str:
    return _stats.DEFAULTS.project_root or os.getcwd()


def source_path(filename: str) -> str:
    """``filename`` (a code object's ``co_filename``) as explanations show it."""
    if not filename or filename.startswith("<") or not os.path.isabs(filename):
        return filename
    candidates = [os.path.normpath(filename)]
    real = os.path.realpath(filename)
    if real != candidates[0]:
        candidates.append(real)
    libraries = _library_dirs()
    for path in candidates:
        found = _shortest(path, libraries)
        if found is not None:
            return found
    root = os.path.normpath(os.path.abspath(project_root()))
    for path in candidates:
        for directory in (root, os.path.realpath(root)):
            found = _relative_to(path, directory)
            if found is not None:
                return found
    entries = [os.path.normpath(os.path.abspath(p)) for p in sys.path if p]
    for path in candidates:
        found = _shortest(path, entries)
        if found is not None:
            return found
    return filename


def resource_name(name: str) -> str:
    """A native resource's name for people: the commit-order pseudo-table
    ``sql:<commits:T>#id=1`` becomes the row ``sql:T#id=1`` it orders."""
    return _COMMITS.sub(r"\1", name)
