"""Helpers of the tests of real C extensions: compile one with the
machine's C compiler against this interpreter's headers, and run an
exploration script that imports it, reading the ``RESULT`` line it prints
(see result_line.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import frontrun

HERE = Path(__file__).parent


def build_extension(name: str, out: Path) -> Path:
    """``_<name>`` compiled from ``<name>.c`` of this directory into ``out``;
    returns ``out``."""
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    assert cc, "the native tests need a C compiler (cc)"
    target = out / (f"_{name}" + sysconfig.get_config_var("EXT_SUFFIX"))
    subprocess.run(
        [
            cc,
            "-shared",
            "-fPIC",
            "-O1",
            "-g",
            "-Wall",
            "-I",
            sysconfig.get_paths()["include"],
            "-o",
            str(target),
            str(HERE / f"{name}.c"),
            "-lpthread",
        ],
        check=True,
    )
    return out


def run_script(script: str, *args: str, preload: bool = True, gate: bool = True) -> dict[str, Any]:
    """Runs ``script`` of this directory with ``args`` in a fresh
    interpreter, under the preload library (``preload``) or with the hooks
    an exploration installs at run time; ``gate=False`` turns the
    scheduling of native mutexes off. Returns its ``RESULT``, checked to
    have lost no native event."""
    env = dict(os.environ)
    env.pop("FRONTRUN_RING", None)
    env.pop("FRONTRUN_MUTEX_GATE", None)
    env.pop("FRONTRUN_RUNTIME_HOOKS", None)
    if not gate:
        env["FRONTRUN_MUTEX_GATE"] = "0"
    if preload:
        env["LD_PRELOAD"] = frontrun.preload_path()
    else:
        env.pop("LD_PRELOAD", None)
    proc = subprocess.run(
        [sys.executable, str(HERE / script), *args], env=env, capture_output=True, text=True, timeout=120
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout + proc.stderr
    result: dict[str, Any] = json.loads(lines[-1][len("RESULT ") :])
    assert result["events_lost"] == 0
    return result
