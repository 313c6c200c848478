"""Where the files that ship inside the package live."""

from __future__ import annotations

import os

PRELOAD_LIBRARY_NAME = "libfrontrun_io.so"


def preload_path() -> str:
    """Absolute path of ``libfrontrun_io.so``, the ``LD_PRELOAD`` library.

    Raises ``FileNotFoundError`` when the package was installed without it,
    which only happens when the Python sources are used without building the
    package (run ``scripts/setup``).
    """
    # (os.path rather than pathlib: this runs in every exploration that
    # detects I/O, and pathlib costs milliseconds to import.)
    directory = os.path.dirname(os.path.realpath(__file__))
    path = os.path.join(directory, PRELOAD_LIBRARY_NAME)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{PRELOAD_LIBRARY_NAME} is missing from {directory}; "
            "build the package (scripts/setup, or pip install .) to create it"
        )
    return path


def preload_loaded() -> bool:
    """True when ``libfrontrun_io.so`` is mapped into this process (started
    under ``LD_PRELOAD`` or by the ``frontrun`` command)."""
    try:
        with open("/proc/self/maps") as maps:
            return any(PRELOAD_LIBRARY_NAME in line for line in maps)
    except OSError:
        return False
