"""The package as a user gets it: ``python -m build`` on a clean copy of
the repository makes an sdist with everything the build needs, builds the
wheel from that sdist (manylinux_2_17, linked with zig as scripts/release
links it: both shared objects need no newer glibc symbol than 2.17), and
the wheel, installed in a fresh virtualenv,
runs a user's project (written here, outside the repository) under plain
``pytest``, ``pytest -n 2``, ``pytest --cov`` and ``frontrun pytest``, none
activated: the
lost update and the psycopg2 race of docs/pytest.md are found in every
mode, the race-free test and a lock-heavy test that never explores pass.

This builds the whole Cargo workspace in release mode: minutes, not
seconds."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "plugin"))

from test_database_example import database_example  # noqa: E402

USER_TESTS = '''
import threading

from frontrun import explore_dpor

LOCK = threading.Lock()


class Counter:
    def __init__(self):
        self.value = 0

    def increment(self):
        current = self.value
        self.value = current + 1


def locked_increment(c):
    with LOCK:
        current = c.value
        c.value = current + 1


def test_lost_update_is_found():
    explore_dpor(Counter, [Counter.increment, Counter.increment], lambda c: c.value == 2,
                 detect_io=False).assert_holds()


def test_the_module_level_lock_makes_it_safe():
    explore_dpor(Counter, [locked_increment, locked_increment], lambda c: c.value == 2,
                 detect_io=False, deadlock_timeout=2.0).assert_holds()


def test_lock_heavy_code_that_never_explores():
    for _ in range(10_000):
        with LOCK:
            pass
'''


def clean_copy(destination: Path) -> Path:
    """The repository's files as a clone would have them (tracked and new
    files, without ignored build output), including uncommitted edits."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, listed):
        source = ROOT / os.fsdecode(name)
        if not source.is_file():
            continue  # deleted in the working tree
        target = destination / os.fsdecode(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    return destination


def env_without_venv() -> dict[str, str]:
    venv_bin = str(Path(sys.executable).parent)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("LD_PRELOAD", "VIRTUAL_ENV", "PYTHONPATH") and not k.startswith("FRONTRUN_")
    }
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", os.defpath).split(os.pathsep) if p != venv_bin)
    return env


@pytest.mark.timeout(3600)
def test_the_sdist_builds_a_wheel_that_installs_and_runs_a_user_project(tmp_path: Path, postgresql_dsn: str) -> None:
    source = clean_copy(tmp_path / "clone")
    dist = tmp_path / "dist"
    env = env_without_venv()
    # Keep cargo's downloads and compiled dependencies between runs.
    env.setdefault("CARGO_TARGET_DIR", str(ROOT / "target" / "dist-test"))
    # As scripts/release builds a wheel: linked with zig (from the venv that
    # scripts/lib.sh makes for it) against the oldest glibc Rust supports.
    zig_python = subprocess.run(
        ["bash", "-c", 'source "$1" && frontrun_zig_python', "-", str(ROOT / "scripts" / "lib.sh")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert zig_python.returncode == 0, zig_python.stderr[-4000:]
    env["MATURIN_PEP517_ARGS"] = "--zig --compatibility manylinux_2_17"
    env["CARGO_ZIGBUILD_PYTHON_PATH"] = zig_python.stdout.strip()
    build = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(dist), str(source)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]

    (sdist,) = dist.glob("frontrun-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    for needed in (
        "pyproject.toml",
        "Cargo.toml",
        "Cargo.lock",
        "LICENSE",
        "README.md",
        "engine/Cargo.toml",
        "engine/src/lib.rs",
        "ring/Cargo.toml",
        "ring/src/lib.rs",
        "wire/Cargo.toml",
        "wire/src/lib.rs",
        "preload/Cargo.toml",
        "preload/src/lib.rs",
        "bindings/build.rs",
        "bindings/python/frontrun/pytest_plugin.py",
    ):
        assert needed in names, f"{needed} is missing from {sdist.name}"
    assert not any(name.endswith(".so") for name in names), "built objects in the sdist"

    (wheel,) = dist.glob("frontrun-*.whl")
    platforms = wheel.stem.split("-")[-1].split(".")
    assert "manylinux_2_17_x86_64" in platforms, wheel.name
    # The newest GLIBC_ symbol version of each shared object, read from its
    # dynamic symbol table: what `auditwheel show` reports, without
    # installing it, and stricter (a libc symbol left with no version, as
    # glibc 2.30's gettid was against 2.17, fails it; auditwheel passes it).
    glibc = subprocess.run(
        [str(ROOT / "scripts" / "wheel-glibc"), str(wheel)], capture_output=True, text=True, check=False
    )
    assert glibc.returncode == 0, glibc.stdout + glibc.stderr
    needs = dict(re.findall(r": (frontrun/\S+\.so) needs at most (GLIBC_[0-9.]+)", glibc.stdout))
    assert "frontrun/libfrontrun_io.so" in needs, glibc.stdout
    assert any(m.startswith("frontrun/_engine.") for m in needs), glibc.stdout
    assert len(needs) == 2, glibc.stdout
    for member, newest in needs.items():
        assert tuple(map(int, newest.removeprefix("GLIBC_").split("."))) <= (2, 17), (member, newest)
    with zipfile.ZipFile(wheel) as zf:
        members = zf.namelist()
    assert "frontrun/libfrontrun_io.so" in members
    assert any(re.fullmatch(r"frontrun/_engine\.cpython-\d+.*\.so", m) for m in members), members
    assert any(m.endswith(".dist-info/entry_points.txt") for m in members)

    venv = tmp_path / "venv"
    subprocess.run([sys._base_executable, "-m", "venv", str(venv)], check=True, env=env)  # type: ignore[attr-defined]
    install = subprocess.run(
        [
            str(venv / "bin" / "pip"),
            "install",
            "--quiet",
            "--disable-pip-version-check",
            str(wheel),
            "pytest",
            "pytest-xdist",
            "pytest-cov",
            "psycopg2-binary",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert install.returncode == 0, install.stderr[-4000:]

    project = tmp_path / "project"
    project.mkdir()
    (project / "test_user.py").write_text(USER_TESTS)
    (project / "test_stock.py").write_text(database_example())
    pytest_cmd = [str(venv / "bin" / "pytest")]
    with_coverage = [*pytest_cmd, "--cov=.", "--cov-report=term-missing"]
    for command in (pytest_cmd, [*pytest_cmd, "-n", "2"], with_coverage, [str(venv / "bin" / "frontrun"), "pytest"]):
        result = subprocess.run(
            [*command, "-p", "no:cacheprovider", "-W", "error"],
            cwd=project,
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=600,
        )
        out = result.stdout
        assert result.returncode == 1, out + result.stderr
        failed = sorted(re.findall(r"^FAILED (\S+)", out, re.M))
        assert failed == [
            "test_stock.py::test_the_last_item_is_sold_once",
            "test_user.py::test_lost_update_is_found",
        ], out
        assert re.search(r"\b2 failed, 2 passed\b", out), out
        assert "lost update on Counter.value" in out
        section = out.split("= frontrun =", 1)[1]
        assert re.search(r"^explorations run: 3$", section, re.M), section
        assert int(re.search(r"^C-level events seen: (\d+)$", section, re.M).group(1)) > 0, section
        if command is with_coverage:
            # Every line of the user's tests ran, the workers' included.
            assert re.search(r"^test_user\.py\s+\d+\s+0\s+100%", out, re.M), out
