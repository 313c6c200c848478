"""Fixtures for the user-facing pieces: example failure reports and a
headless Chromium to render them in.

Chromium is required, not optional: without it the browser tests fail and
say how to install it (``scripts/ci-deps``), rather than skip.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


@pytest.fixture(scope="session")
def chromium() -> str:
    path = os.environ.get("FRONTRUN_CHROMIUM", "/usr/bin/chromium")
    if not os.access(path, os.X_OK):
        pytest.fail(
            f"Chromium is needed to render the HTML report and {path} is not executable; "
            "install it with scripts/ci-deps (Debian's chromium package) or set FRONTRUN_CHROMIUM"
        )
    return path


Chromium = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def run_chromium(chromium: str) -> Chromium:
    """Run headless Chromium on a page with the given extra flags."""

    def run(page: Path, *flags: str) -> subprocess.CompletedProcess[str]:
        # The browser must not inherit the preload library when the suite
        # itself runs under `frontrun pytest`.
        env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD" and not k.startswith("FRONTRUN_")}
        with tempfile.TemporaryDirectory(prefix="frontrun-chromium-") as profile:
            result = subprocess.run(
                [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *flags, page.resolve().as_uri()],
                capture_output=True,
                text=True,
                env=env,
                check=False,
                timeout=120,
            )
        assert result.returncode == 0, f"chromium failed ({result.returncode}): {result.stderr[-2000:]}"
        return result

    return run
