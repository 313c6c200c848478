"""coverage.py keeps every line the explored threads run.

On 3.10 and 3.11 frontrun traces a worker with a C trace function of its
own; it must hand coverage's tracer (installed in every new thread through
``threading.settrace``) the events it needs, and give it back after the
execution. On 3.12+ frontrun uses a ``sys.monitoring`` tool id that
coverage does not.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).with_name("coverage_project")


def _coverage(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "coverage", *args, f"--data-file={tmp_path / '.coverage'}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_coverage_sees_every_line_the_explored_threads_ran(tmp_path: Path) -> None:
    for name in ("counter.py", "explore_counter.py"):
        shutil.copy(PROJECT / name, tmp_path / name)
    plain = subprocess.run(
        [sys.executable, "explore_counter.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert plain.returncode == 0 and plain.stdout.startswith("verdict holds"), plain.stdout + plain.stderr
    run = _coverage(tmp_path, "run", "explore_counter.py")
    assert run.returncode == 0, run.stdout + run.stderr
    # Under coverage the exploration is the same one.
    assert run.stdout == plain.stdout
    report = _coverage(tmp_path, "report", "--include=counter.py", "--show-missing")
    assert report.returncode == 0, report.stdout + report.stderr
    line = next(ln for ln in report.stdout.splitlines() if ln.startswith("counter.py"))
    assert line.split()[-1] == "100%" or line.split()[-2] == "100%", report.stdout


def test_the_thread_state_layout_frontrun_reads_is_the_interpreters(tmp_path: Path) -> None:
    # frontrun reads a thread's trace function straight from PyThreadState
    # (the C API has no getter); the offset must be the headers' own.
    import sysconfig

    from frontrun import _engine

    offset = _engine.tracefunc_offset()
    if sys.version_info >= (3, 12):
        assert offset is None  # the sys.monitoring backend does not read it
        return
    source = tmp_path / "offset.c"
    source.write_text(
        "#include <Python.h>\n#include <stddef.h>\n#include <stdio.h>\n"
        'int main(void) { printf("%zu", offsetof(PyThreadState, c_tracefunc)); return 0; }\n'
    )
    binary = tmp_path / "offset"
    include = sysconfig.get_paths()["include"]
    subprocess.run(["cc", f"-I{include}", str(source), "-o", str(binary)], check=True, timeout=60)
    assert int(subprocess.run([str(binary)], capture_output=True, text=True, check=True).stdout) == offset
