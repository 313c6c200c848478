"""The installed package: native module, preload library, command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import frontrun
import frontrun._engine


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "frontrun", *args], capture_output=True, text=True, env=env, check=False
    )


def test_native_module_and_package_report_the_same_version() -> None:
    assert frontrun.__version__ == frontrun._engine.__version__
    assert frontrun.__version__.count(".") == 2


def test_preload_path_is_an_absolute_existing_shared_object() -> None:
    path = Path(frontrun.preload_path())
    assert path.is_absolute()
    assert path.name == "libfrontrun_io.so"
    assert path.read_bytes()[:4] == b"\x7fELF"


def test_cli_prints_the_preload_path() -> None:
    result = run_cli("--preload-path")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == frontrun.preload_path()


def test_cli_prints_the_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"frontrun {frontrun.__version__}"


def test_a_python_process_runs_cleanly_with_the_library_preloaded() -> None:
    env = dict(os.environ, LD_PRELOAD=frontrun.preload_path())
    result = subprocess.run(
        [sys.executable, "-c", "import frontrun, socket, threading; print('ok')"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ok\n"
    assert result.stderr == ""
