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
            "build the package (scripts/setup, or pip install ./bindings) to create it"
        )
    return str(path)
