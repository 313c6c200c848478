"""The ``frontrun`` command line.

``frontrun CMD ARGS...`` runs a command with ``libfrontrun_io.so`` preloaded,
so that the native code of the process under test (libpq, a database
client, any C extension) reports its I/O and mutex operations to the engine.

The wrapper only prepares the environment and then *replaces itself* with
the command (``os.execve``), for three reasons:

* the exit status is the command's own, bit for bit: a normal exit code
  passes through, and a command killed by a signal is seen by whoever waits
  for ``frontrun`` as killed by that signal (a shell then reports 128+N in
  ``$?``, exactly as if the command had been run without the wrapper);
* signals (Ctrl-C, ``kill``, job control) reach the command directly, with
  no relay that could lose, delay or duplicate them;
* the wrapper must not hold the event ring: the preload library creates it
  in the first process that loads it, which has to be the process under
  test (the wrapper itself runs without the library).

The command is looked up with the ``bin/`` directory of frontrun's own
environment first in ``PATH`` (and the command inherits that ``PATH``):
``.venv/bin/frontrun pytest`` runs the venv's pytest, and whatever that
pytest starts finds the venv's ``python``, without an activated venv.

Before replacing itself the wrapper checks what would otherwise fail later
and less clearly (the command exists, the library exists, the directory the
library will create its ring in is writable) and reports each problem as one
line on stderr with its own exit status, see the ``EXIT_*`` constants.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from frontrun._env import ENV_ACTIVE, ENV_RING

#: The command line could not be understood (unknown option, no command).
EXIT_USAGE = 2
#: ``libfrontrun_io.so`` is not installed next to the package.
EXIT_NO_LIBRARY = 3
#: The library could not create (or attach to) its event ring.
EXIT_NO_RING = 4
#: The command was found but cannot be executed (as a shell reports it).
EXIT_NOT_EXECUTABLE = 126
#: The command was not found (as a shell reports it).
EXIT_NOT_FOUND = 127

LD_PRELOAD = "LD_PRELOAD"

USAGE = "usage: frontrun [--help] [--version] [--preload-path] [--] COMMAND [ARGS...]"

HELP = f"""\
{USAGE}

Run COMMAND with frontrun's LD_PRELOAD library, so that the I/O and mutex
calls made by native code (C extensions such as libpq) take part in race
detection. Everything after COMMAND belongs to COMMAND. frontrun replaces
itself with COMMAND: the exit status and signals are COMMAND's own.

options:
  -h, --help        show this help and exit
  --version         print frontrun's version and exit
  --preload-path    print the absolute path of libfrontrun_io.so and exit
  --                end of frontrun's options (for a COMMAND starting with -)

environment given to COMMAND:
  LD_PRELOAD        libfrontrun_io.so first, then any libraries already listed
  PATH              the bin/ directory of frontrun's own environment first, so
                    pytest, python and other commands installed beside frontrun
                    are found without an activated virtualenv
  FRONTRUN_ACTIVE   1

exit status:
  COMMAND's own status, or
  {EXIT_USAGE}    the frontrun command line is wrong
  {EXIT_NO_LIBRARY}    libfrontrun_io.so is missing (the package was not built)
  {EXIT_NO_RING}    the library could not create its event ring (directory not writable)
  {EXIT_NOT_EXECUTABLE}  COMMAND is not executable
  {EXIT_NOT_FOUND}  COMMAND was not found

examples:
  frontrun pytest tests/                     run a test suite under the library
  frontrun pytest -x -k race                 options after COMMAND go to COMMAND
  LD_PRELOAD=$(frontrun --preload-path) pytest tests/
                                             the same without the wrapper
"""


class CliError(Exception):
    """A problem the wrapper reports as one line on stderr, with an exit status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def _fail(message: str, status: int) -> int:
    print(f"frontrun: {message}", file=sys.stderr)
    return status


def library_path() -> str:
    from frontrun._paths import preload_path

    try:
        return preload_path()
    except FileNotFoundError as exc:
        raise CliError(str(exc), EXIT_NO_LIBRARY) from None


def with_preload(existing: str | None, library: str) -> str:
    """The ``LD_PRELOAD`` value that loads ``library`` first.

    Entries already present keep their order. Any entry naming a
    ``libfrontrun_io.so`` (this one, or a copy from another installation) is
    dropped: two copies of the hooks in one process would both attach to the
    ring and report every call twice. The dynamic loader accepts spaces and
    colons as separators; the result uses colons.
    """
    name = Path(library).name
    kept = [entry for entry in (existing or "").replace(" ", ":").split(":") if entry and Path(entry).name != name]
    return ":".join([library, *kept])


def ring_directory(environ: Mapping[str, str], shm: Path = Path("/dev/shm")) -> Path:
    """Where the library will create its ring, chosen as the engine does.

    ``frontrun_ring::create_private_ring`` uses ``/dev/shm`` when it
    is a directory, else Rust's ``std::env::temp_dir()``: ``$TMPDIR`` when
    set, else ``/tmp``. (An empty ``$TMPDIR`` means the current directory.)
    """
    if shm.is_dir():
        return shm
    tmpdir = environ.get("TMPDIR")
    return Path(tmpdir) if tmpdir is not None else Path("/tmp")


def check_ring(environ: Mapping[str, str], shm: Path = Path("/dev/shm")) -> None:
    """Raise :class:`CliError` unless the library will get a ring.

    With ``FRONTRUN_RING`` set (``frontrun`` started from a process already
    under the library) the library attaches to that file, which must exist.
    Otherwise it creates a private directory for a new ring: try exactly
    that, since permission bits do not tell the whole story (root ignores
    them; a read-only mount does not).
    """
    inherited = environ.get(ENV_RING)
    if inherited is not None:
        if not inherited:
            # The library takes a set variable as the ring to attach to,
            # even an empty one, and would disable itself.
            raise CliError(
                f"{ENV_RING} is set but empty; unset it to let the library create a new ring",
                EXIT_NO_RING,
            )
        if not os.path.isfile(inherited):
            raise CliError(
                f"{ENV_RING}={inherited} does not exist; unset {ENV_RING} to let the library create a new ring",
                EXIT_NO_RING,
            )
        return
    directory = ring_directory(environ, shm)
    try:
        probe = tempfile.mkdtemp(prefix="frontrun-check-", dir=directory)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        hint = "make it writable" if directory == shm else "set TMPDIR to a writable directory"
        raise CliError(
            f"cannot create the event ring in {directory}: {reason}; {hint}",
            EXIT_NO_RING,
        ) from None
    os.rmdir(probe)


def resolve_command(command: str, environ: Mapping[str, str]) -> str:
    """The executable ``command`` names, looked up as ``execvp`` would."""
    if os.sep in command:
        path = command
        if not os.path.exists(path):
            raise CliError(f"{command}: no such file", EXIT_NOT_FOUND)
    else:
        found = shutil.which(command, mode=os.F_OK | os.X_OK, path=environ.get("PATH", os.defpath))
        if found is None:
            raise CliError(f"{command}: command not found", EXIT_NOT_FOUND)
        path = found
    if os.path.isdir(path) or not os.access(path, os.X_OK):
        raise CliError(f"{command}: not an executable file", EXIT_NOT_EXECUTABLE)
    return path


def scripts_directory() -> str:
    """The ``bin/`` directory of the environment frontrun is installed in
    (where pip put the ``frontrun``, ``pytest`` and ``python`` commands)."""
    import sysconfig

    return sysconfig.get_path("scripts") or os.path.dirname(sys.executable)


def with_scripts_first(path: str | None, scripts: str) -> str:
    """``PATH`` with ``scripts`` in front (once), so that ``.venv/bin/frontrun
    pytest`` runs that environment's pytest without an activated venv."""
    kept = [entry for entry in (path if path is not None else os.defpath).split(os.pathsep) if entry != scripts]
    return os.pathsep.join([scripts, *kept])


def command_environment(environ: Mapping[str, str], library: str) -> dict[str, str]:
    env = dict(environ)
    env["PATH"] = with_scripts_first(environ.get("PATH"), scripts_directory())
    env[LD_PRELOAD] = with_preload(environ.get(LD_PRELOAD), library)
    env[ENV_ACTIVE] = "1"
    return env


def _restore_signal_defaults() -> None:
    # Python ignores SIGPIPE and SIGXFSZ for itself, and an ignored signal
    # stays ignored across exec: without this, `frontrun yes | head` would
    # make `yes` fail with EPIPE instead of ending quietly. (subprocess's
    # restore_signals does the same.) Signals Python *handles* go back to
    # their default on exec by themselves.
    for name in ("SIGPIPE", "SIGXFSZ"):
        signum = getattr(signal, name, None)
        if signum is not None:
            signal.signal(signum, signal.SIG_DFL)


def run(command: Sequence[str], environ: Mapping[str, str] | None = None) -> int:
    """Replace this process with ``command`` under the preload library.

    Returns only when that is impossible, with the exit status to use.
    """
    environ = os.environ if environ is None else environ
    try:
        library = library_path()
        env = command_environment(environ, library)
        executable = resolve_command(command[0], env)
        check_ring(environ)
    except CliError as exc:
        return _fail(str(exc), exc.status)
    sys.stdout.flush()
    sys.stderr.flush()
    _restore_signal_defaults()
    try:
        os.execve(executable, list(command), env)
    except OSError as exc:
        status = EXIT_NOT_FOUND if isinstance(exc, FileNotFoundError) else EXIT_NOT_EXECUTABLE
        return _fail(f"{command[0]}: {exc.strerror or exc}", status)
    raise AssertionError("unreachable: execve returned")  # pragma: no cover


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    # Options are only read before the command: `frontrun pytest -x` hands
    # `-x` to pytest. argparse cannot be told to stop at the first
    # positional reliably, hence this small loop.
    while args and args[0].startswith("-"):
        option = args.pop(0)
        if option == "--":
            break
        if option in ("-h", "--help"):
            print(HELP, end="")
            return 0
        if option == "--version":
            from frontrun import __version__

            print(f"frontrun {__version__}")
            return 0
        if option == "--preload-path":
            try:
                print(library_path())
            except CliError as exc:
                return _fail(str(exc), exc.status)
            return 0
        return _fail(f"unknown option {option!r} (options go before the command; see frontrun --help)", EXIT_USAGE)
    if not args:
        return _fail("no command given; usage: frontrun [OPTIONS] COMMAND [ARGS...] (see frontrun --help)", EXIT_USAGE)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
