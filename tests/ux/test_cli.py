"""The ``frontrun`` wrapper, run as users run it: a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import frontrun
import pytest
from frontrun import cli

FRONTRUN = Path(sys.executable).parent / "frontrun"
LIBRARY = frontrun.preload_path()
SIGPIPE_BIT = 1 << (signal.SIGPIPE - 1)


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without the preload library or its ring.

    The suite itself may run under ``frontrun pytest``; the commands under
    test must start from a known state.
    """
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD" and not k.startswith("FRONTRUN_")}
    env.update(extra)
    return env


def frontrun_cmd(*args: str, env: dict[str, str] | None = None, **kw: object) -> subprocess.CompletedProcess[str]:
    assert FRONTRUN.is_file(), f"{FRONTRUN} is missing: run scripts/setup"
    return subprocess.run(
        [str(FRONTRUN), *args],
        capture_output=True,
        text=True,
        env=clean_env() if env is None else env,
        check=False,
        timeout=60,
        **kw,  # type: ignore[arg-type]
    )


def python_prints(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def remove_ring(path: str) -> None:
    """Remove a ring whose creator died before it could (killed by a signal)."""
    ring = Path(path.strip())
    assert ring.name == "ring" and ring.parent.name.startswith("frontrun-"), path
    shutil.rmtree(ring.parent, ignore_errors=True)


@pytest.mark.parametrize("status", [0, 1, 7, 255])
def test_the_exit_status_of_the_command_passes_through(status: int) -> None:
    result = frontrun_cmd(*python_prints(f"raise SystemExit({status})"))
    assert result.returncode == status, result.stderr
    assert result.stderr == ""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_command_killed_by_a_signal_leaves_frontrun_killed_by_that_signal(signum: int) -> None:
    result = frontrun_cmd("sh", "-c", f'echo "$FRONTRUN_RING"; kill -{signum} $$')
    remove_ring(result.stdout)
    assert result.returncode == -signum


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_shell_reports_128_plus_the_signal_number_as_for_the_bare_command(signum: int) -> None:
    script = f'"$0" sh -c "echo \\"\\$FRONTRUN_RING\\"; kill -{signum} \\$\\$"; echo "status=$?"'
    result = subprocess.run(
        ["sh", "-c", script, str(FRONTRUN)], capture_output=True, text=True, env=clean_env(), check=False, timeout=60
    )
    ring, status = result.stdout.splitlines()
    remove_ring(ring)
    assert status == f"status={128 + signum}", result.stderr


def test_the_command_runs_with_the_library_mapped_and_its_ring_created() -> None:
    probe = (
        "import os, json; "
        "maps = [l.split()[-1] for l in open('/proc/self/maps') if l.rstrip().endswith('.so')]; "
        "ring = os.environ.get('FRONTRUN_RING'); "
        "magic = open(ring, 'rb').read(8).decode() if ring else None; "
        "print(json.dumps({'maps': maps, 'ring': ring, 'magic': magic, "
        "'active': os.environ.get('FRONTRUN_ACTIVE'), 'preload': os.environ.get('LD_PRELOAD')}))"
    )
    result = frontrun_cmd(*python_prints(probe))
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert os.path.realpath(LIBRARY) in {os.path.realpath(p) for p in seen["maps"]}
    assert seen["ring"] is not None, "the library did not set FRONTRUN_RING: it did not create a ring"
    assert Path(seen["ring"]).parent.parent == cli.ring_directory(clean_env())
    assert seen["magic"] == "FRNTRING"
    assert seen["active"] == "1"
    assert seen["preload"] == LIBRARY


def test_the_ring_the_command_created_is_removed_when_it_exits() -> None:
    result = frontrun_cmd(*python_prints("import os; print(os.environ['FRONTRUN_RING'])"))
    assert result.returncode == 0, result.stderr
    ring = Path(result.stdout.strip())
    assert ring.name == "ring"
    assert not ring.exists()
    assert not ring.parent.exists()


def test_libraries_already_preloaded_stay_after_frontrun_and_frontrun_is_not_duplicated() -> None:
    env = clean_env(LD_PRELOAD=f"libm.so.6 {LIBRARY}:libz.so.1")
    probe = (
        "import os; maps = {l.split()[-1] for l in open('/proc/self/maps') if '.so' in l}; "
        "print(os.environ['LD_PRELOAD']); "
        "print(sum(1 for p in maps if p.endswith('libfrontrun_io.so'))); "
        "print(any('libm.so.6' in p for p in maps), any('libz.so.1' in p for p in maps))"
    )
    result = frontrun_cmd(*python_prints(probe), env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"{LIBRARY}:libm.so.6:libz.so.1", "1", "True True"]


@pytest.mark.parametrize(
    ("existing", "expected"),
    [
        (None, "/lib/libfrontrun_io.so"),
        ("", "/lib/libfrontrun_io.so"),
        ("a.so", "/lib/libfrontrun_io.so:a.so"),
        ("a.so b.so", "/lib/libfrontrun_io.so:a.so:b.so"),
        ("a.so::/lib/libfrontrun_io.so", "/lib/libfrontrun_io.so:a.so"),
        ("/other/venv/libfrontrun_io.so b.so", "/lib/libfrontrun_io.so:b.so"),
    ],
)
def test_ld_preload_puts_frontrun_first_and_keeps_one_copy(existing: str | None, expected: str) -> None:
    assert cli.with_preload(existing, "/lib/libfrontrun_io.so") == expected


def test_options_after_the_command_belong_to_the_command() -> None:
    result = frontrun_cmd(sys.executable, "-c", "import sys; print(sys.argv[1:])", "-x", "--version", "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['-x', '--version', '--help']"


def test_a_double_dash_ends_frontrun_options() -> None:
    result = frontrun_cmd("--", sys.executable, "-c", "print('ran')")
    assert (result.returncode, result.stdout) == (0, "ran\n"), result.stderr


def test_the_command_starts_with_sigpipe_at_its_default_action() -> None:
    # The wrapper is Python, which ignores SIGPIPE for itself, and an
    # ignored signal survives exec. cat reads its own status here.
    result = frontrun_cmd("cat", "/proc/self/status")
    assert result.returncode == 0, result.stderr
    ignored = next(line.split()[1] for line in result.stdout.splitlines() if line.startswith("SigIgn:"))
    assert int(ignored, 16) & SIGPIPE_BIT == 0


def test_a_writer_into_a_closed_pipe_ends_quietly_as_without_frontrun() -> None:
    result = subprocess.run(
        ["sh", "-c", """"$0" sh -c 'echo "$FRONTRUN_RING" >&2; exec yes' | head -n 1""", str(FRONTRUN)],
        capture_output=True,
        text=True,
        env=clean_env(),
        check=False,
        timeout=60,
    )
    ring, *errors = result.stderr.splitlines()
    remove_ring(ring)
    assert (result.returncode, result.stdout, errors) == (0, "y\n", [])


def test_a_missing_command_is_one_line_on_stderr_and_status_127() -> None:
    result = frontrun_cmd("frontrun-no-such-command", "--flag")
    assert result.returncode == cli.EXIT_NOT_FOUND == 127
    assert result.stderr == "frontrun: frontrun-no-such-command: command not found\n"
    assert result.stdout == ""


def test_a_missing_command_path_is_status_127(tmp_path: Path) -> None:
    result = frontrun_cmd(str(tmp_path / "nothing-here"))
    assert result.returncode == 127
    assert result.stderr == f"frontrun: {tmp_path / 'nothing-here'}: no such file\n"


def test_a_file_that_is_not_executable_is_status_126(tmp_path: Path) -> None:
    script = tmp_path / "script.sh"
    script.write_text("echo hi\n")
    result = frontrun_cmd(str(script))
    assert result.returncode == cli.EXIT_NOT_EXECUTABLE == 126
    assert result.stderr == f"frontrun: {script}: not an executable file\n"


def test_no_command_is_a_usage_error_on_one_line() -> None:
    result = frontrun_cmd()
    assert result.returncode == cli.EXIT_USAGE == 2
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("frontrun: no command given")


def test_an_unknown_option_before_the_command_is_a_usage_error() -> None:
    result = frontrun_cmd("--frobnicate", "true")
    assert result.returncode == 2
    assert result.stderr == (
        "frontrun: unknown option '--frobnicate' (options go before the command; see frontrun --help)\n"
    )


def test_help_shows_the_usage_and_both_ways_to_run_pytest() -> None:
    result = frontrun_cmd("--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: frontrun ")
    assert "frontrun pytest tests/" in result.stdout
    assert "LD_PRELOAD=$(frontrun --preload-path) pytest" in result.stdout
    for status in (2, 3, 4, 126, 127):
        assert f"  {status} " in result.stdout


def test_preload_path_and_version_print_one_line_each() -> None:
    assert frontrun_cmd("--preload-path").stdout == LIBRARY + "\n"
    assert frontrun_cmd("--version").stdout == f"frontrun {frontrun.__version__}\n"


def copy_package_without_library(destination: Path) -> Path:
    package = Path(frontrun.__file__).parent
    shutil.copytree(package, destination / "frontrun", ignore=shutil.ignore_patterns("libfrontrun_io.so"))
    return destination


def test_a_package_built_without_the_library_is_one_line_and_status_3(tmp_path: Path) -> None:
    env = clean_env(PYTHONPATH=str(copy_package_without_library(tmp_path)))
    for args in (["true"], ["--preload-path"]):
        result = subprocess.run(
            [sys.executable, "-m", "frontrun", *args], capture_output=True, text=True, env=env, check=False
        )
        assert result.returncode == cli.EXIT_NO_LIBRARY == 3, result.stderr
        assert len(result.stderr.splitlines()) == 1
        assert result.stderr.startswith("frontrun: libfrontrun_io.so is missing from ")
        assert "scripts/setup" in result.stderr


def test_an_inherited_ring_that_does_not_exist_is_one_line_and_status_4(tmp_path: Path) -> None:
    missing = tmp_path / "gone" / "ring"
    result = frontrun_cmd("true", env=clean_env(FRONTRUN_RING=str(missing)))
    assert result.returncode == cli.EXIT_NO_RING == 4
    assert result.stderr == (
        f"frontrun: FRONTRUN_RING={missing} does not exist; unset FRONTRUN_RING to let the library create a new ring\n"
    )


def test_a_frontrun_started_under_the_library_lets_its_command_join_the_same_ring() -> None:
    outer = (
        "import os, subprocess, sys; "
        f"inner = subprocess.run([{str(FRONTRUN)!r}, sys.executable, '-c', "
        "'import os; print(os.environ[\"FRONTRUN_RING\"])'], capture_output=True, text=True); "
        "print(os.environ['FRONTRUN_RING']); print(inner.stdout.strip()); print(inner.returncode)"
    )
    result = frontrun_cmd(*python_prints(outer))
    assert result.returncode == 0, result.stderr
    own, inner, status = result.stdout.splitlines()
    assert (inner, status) == (own, "0")


def test_the_ring_directory_is_chosen_as_the_engine_chooses_it(tmp_path: Path) -> None:
    shm = tmp_path / "shm"
    assert cli.ring_directory({"TMPDIR": "/elsewhere"}, shm=shm) == Path("/elsewhere")
    assert cli.ring_directory({}, shm=shm) == Path("/tmp")
    shm.mkdir()
    assert cli.ring_directory({"TMPDIR": "/elsewhere"}, shm=shm) == shm


def test_a_missing_temporary_directory_without_dev_shm_is_reported_with_what_to_do(tmp_path: Path) -> None:
    env = {"TMPDIR": str(tmp_path / "no-such-dir")}
    with pytest.raises(cli.CliError) as raised:
        cli.check_ring(env, shm=tmp_path / "no-shm")
    assert raised.value.status == cli.EXIT_NO_RING
    assert str(raised.value) == (
        f"cannot create the event ring in {tmp_path / 'no-such-dir'}: No such file or directory; "
        "set TMPDIR to a writable directory"
    )


def test_the_writability_check_leaves_nothing_behind(tmp_path: Path) -> None:
    cli.check_ring({"TMPDIR": str(tmp_path)}, shm=tmp_path / "no-shm")
    assert list(tmp_path.iterdir()) == []


def test_a_read_only_dev_shm_is_refused_before_the_library_would_disable_itself() -> None:
    # A private mount namespace with a read-only tmpfs over /dev/shm: the
    # only way to make the directory unwritable for root, which ignores
    # permission bits.
    unshare = shutil.which("unshare")
    if os.geteuid() != 0 or unshare is None:
        pytest.skip("needs root and unshare(1) to mount a read-only /dev/shm in a private namespace")
    script = (
        'mount -t tmpfs -o ro tmpfs /dev/shm || exit 99; "$0" true; echo "wrapper=$?"; '
        'LD_PRELOAD="$1" /bin/true; echo "bare=$?"'
    )
    result = subprocess.run(
        [unshare, "--mount", "--propagation", "private", "sh", "-c", script, str(FRONTRUN), LIBRARY],
        capture_output=True,
        text=True,
        env=clean_env(),
        check=False,
        timeout=60,
    )
    assert result.returncode != 99, f"could not mount a read-only /dev/shm: {result.stderr}"
    assert result.stdout.splitlines() == ["wrapper=4", "bare=0"]
    wrapper_line, library_line = result.stderr.splitlines()
    assert wrapper_line == "frontrun: cannot create the event ring in /dev/shm: Read-only file system; make it writable"
    # Without the wrapper's check the command runs, with the library off.
    assert "libfrontrun_io.so is disabled" in library_line


def test_the_commands_of_frontrun_s_own_environment_are_found_without_an_activated_venv() -> None:
    # PATH without the venv, as in a shell where it was never activated.
    venv_bin = str(FRONTRUN.parent)
    bare = os.pathsep.join(p for p in os.environ.get("PATH", os.defpath).split(os.pathsep) if p != venv_bin)
    env = clean_env(PATH=bare)
    assert shutil.which("pytest", path=bare) != str(FRONTRUN.parent / "pytest")
    result = frontrun_cmd("pytest", "--version", env=env)
    assert result.returncode == 0, result.stderr
    assert "pytest" in result.stdout + result.stderr
    # The command inherits that PATH: what it starts is found there too.
    shown = frontrun_cmd("sh", "-c", 'command -v python; echo "$PATH"', env=env)
    assert shown.returncode == 0, shown.stderr
    python, path = shown.stdout.splitlines()
    assert python == str(FRONTRUN.parent / "python")
    assert path.split(os.pathsep)[0] == venv_bin
    assert path.split(os.pathsep)[1:] == [p for p in bare.split(os.pathsep) if p != venv_bin]


def test_the_scripts_directory_goes_first_in_path_once() -> None:
    assert cli.with_scripts_first("/usr/bin:/v/bin:/bin", "/v/bin") == "/v/bin:/usr/bin:/bin"
    assert cli.with_scripts_first("/v/bin", "/v/bin") == "/v/bin"
    assert cli.with_scripts_first(None, "/v/bin") == os.pathsep.join(["/v/bin", *os.defpath.split(os.pathsep)])
