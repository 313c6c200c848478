"""Ring directories left in /dev/shm by creators that ended without their
destructor (``_exit``, a signal) are removed by the next process that
creates a ring, and nothing else is."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import frontrun
import pytest

SHM = Path("/dev/shm")
MAGIC = b"FRNTRING"

pytestmark = pytest.mark.skipif(not SHM.is_dir(), reason="rings live in the temporary directory without /dev/shm")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTRUN_")}
    env["LD_PRELOAD"] = frontrun.preload_path()
    return env


def _run(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code, *args], env=_env(), capture_output=True, text=True, timeout=60)


def _ring_of(code: str) -> Path:
    """Run ``code`` under the library after printing the ring's path."""
    proc = _run("import os; print(os.environ['FRONTRUN_RING'], flush=True)\n" + code)
    assert proc.stderr == ""
    return Path(proc.stdout.splitlines()[0])


def _gone_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def _fake_ring_dir(pid: int, *, mode: int = 0o700, magic: bytes = MAGIC, extra: str | None = None) -> Path:
    directory = SHM / f"frontrun-{pid}-{time.monotonic_ns() & 0xFFFFFFFF:08x}0"
    directory.mkdir(mode=mode)
    os.chmod(directory, mode)
    (directory / "ring").write_bytes(magic + bytes(248))
    if extra:
        (directory / extra).write_text("")
    return directory


def _remove(directory: Path) -> None:
    for child in directory.iterdir():
        child.unlink()
    directory.rmdir()


def test_a_ring_left_by_os_exit_is_removed_when_the_next_process_creates_its_ring() -> None:
    left = _ring_of("os._exit(0)")
    assert left.is_file(), "os._exit skips the destructor that removes the ring"
    _run("pass")
    assert not left.parent.exists()


def test_a_ring_left_by_a_sigkilled_creator_is_removed_once_the_creator_is_gone() -> None:
    with subprocess.Popen(
        [sys.executable, "-c", "import os, time; print(os.environ['FRONTRUN_RING'], flush=True); time.sleep(60)"],
        env=_env(),
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdout is not None
        ring = Path(child.stdout.readline().strip())
        try:
            _run("pass")
            assert ring.is_file(), "the ring of a running creator must stay"
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
    _run("pass")
    assert not ring.parent.exists()


def test_a_ring_stays_while_a_child_of_its_gone_creator_still_runs(tmp_path: Path) -> None:
    # The creator starts a child (fork and exec) and ends with os._exit. The
    # child makes a marker file once its interpreter runs, so the library in
    # it has loaded and holds the ring.
    marker = tmp_path / "child-up"
    code = (
        "import os, subprocess, sys\n"
        "child = subprocess.Popen([sys.executable, '-c',\n"
        "    'import sys, time; open(sys.argv[1], \"w\").close(); time.sleep(60)', sys.argv[1]],\n"
        "                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        "print(os.environ['FRONTRUN_RING'], child.pid, flush=True)\n"
        "os._exit(0)\n"
    )
    proc = _run(code, str(marker))
    ring, child_pid = proc.stdout.split()
    try:
        deadline = time.monotonic() + 30
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert marker.exists(), "the child never started"
        _run("pass")
        assert Path(ring).is_file(), "the child still writes to this ring"
    finally:
        os.kill(int(child_pid), signal.SIGKILL)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{child_pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    _run("pass")
    assert not Path(ring).parent.exists()


def test_a_ring_of_a_creator_that_holds_it_stays_even_when_its_pid_is_not_visible() -> None:
    # As for a creator in another pid namespace sharing /dev/shm: the name's
    # pid is not running here, but the creator's lock is held.
    import fcntl

    directory = _fake_ring_dir(_gone_pid())
    with open(directory / "ring", "rb") as held:
        fcntl.flock(held, fcntl.LOCK_SH)
        _run("pass")
        assert directory.exists()
    _run("pass")
    assert not directory.exists()


@pytest.mark.parametrize(
    "kind",
    ["mode 0755", "not a ring", "another file inside", "a symlink"],
)
def test_directories_that_are_not_unmistakably_frontrun_rings_are_left_alone(kind: str, tmp_path: Path) -> None:
    pid = _gone_pid()
    if kind == "mode 0755":
        target = _fake_ring_dir(pid, mode=0o755)
    elif kind == "not a ring":
        target = _fake_ring_dir(pid, magic=b"NOTARING")
    elif kind == "another file inside":
        target = _fake_ring_dir(pid, extra="notes.txt")
    else:
        real = tmp_path / "elsewhere"
        real.mkdir(mode=0o700)
        (real / "ring").write_bytes(MAGIC + bytes(248))
        target = SHM / f"frontrun-{pid}-abc0"
        target.symlink_to(real)
    try:
        _run("pass")
        assert target.exists() or target.is_symlink()
        if kind == "a symlink":
            assert (tmp_path / "elsewhere" / "ring").exists()
    finally:
        if target.is_symlink():
            target.unlink()
        else:
            _remove(target)


def test_a_ring_owned_by_another_user_is_left_alone() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to give a directory to another user")
    directory = _fake_ring_dir(_gone_pid())
    try:
        os.chown(directory, 65534, 65534)
        os.chown(directory / "ring", 65534, 65534)
        _run("pass")
        assert directory.exists()
    finally:
        _remove(directory)
