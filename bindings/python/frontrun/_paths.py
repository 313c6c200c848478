"""Where the files that ship inside the package live."""

from __future__ import annotations

from pathlib import Path

PRELOAD_LIBRARY_NAME = "libfrontrun_io.so"


def preload_path() -> str:
    """Absolute path of ``libfrontrun_io.so``, the ``LD_PRELOAD`` library.

    Raises ``FileNotFoundError`` when the package was installed without it,
    which only happens when the Python sources are used without building the
    package (run ``scripts/setup``).
    """
    path = Path(__file__).resolve().parent / PRELOAD_LIBRARY_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"{PRELOAD_LIBRARY_NAME} is missing from {path.parent}; "
            "build the package (scripts/setup, or pip install .) to create it"
        )
    return str(path)


def preload_loaded() -> bool:
    """True when ``libfrontrun_io.so`` is mapped into this process (started
    under ``LD_PRELOAD`` or by the ``frontrun`` command)."""
    try:
        with open("/proc/self/maps") as maps:
            return any(PRELOAD_LIBRARY_NAME in line for line in maps)
    except OSError:
        return False
