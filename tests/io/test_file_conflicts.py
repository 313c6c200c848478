"""Files: a read-modify-write counter in a file races; its safe twins hold."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import frontrun
import pytest
from _io_servers import IGNORE_PRELOAD_WARNING
from frontrun import _engine, _io, explore_dpor, record_accesses
from frontrun.dpor import _preload_loaded

pytestmark = pytest.mark.filterwarnings(IGNORE_PRELOAD_WARNING)

ORIGINAL_OS_READ = os.read


class FileCounter:
    """A counter kept in a file; one file per name in ``names``."""

    def __init__(self, directory: Path, names: tuple[str, ...] = ("counter",)) -> None:
        self.paths = [directory / name for name in names]
        for path in self.paths:
            path.write_text("0")
        self.lock = threading.Lock()

    def total(self) -> int:
        return sum(int(path.read_text()) for path in self.paths)


def increment_file(path: Path) -> None:
    with open(path) as f:
        current = int(f.read())
    with open(path, "w") as f:
        f.write(str(current + 1))


def test_file_counter_lost_update_is_found_and_named(tmp_path: Path) -> None:
    result = explore_dpor(
        setup=lambda: FileCounter(tmp_path),
        threads=[lambda s: increment_file(s.paths[0]), lambda s: increment_file(s.paths[0])],
        invariant=lambda s: s.total() == 2,
        reproduce_on_failure=5,
    )
    assert not result.property_holds
    assert result.explanation is not None
    name = f"file:{os.path.realpath(tmp_path / 'counter')}"
    assert f"[read {name}]" in result.explanation
    assert f"[write {name}]" in result.explanation
    # A lost update, or a read of the file another thread has just
    # truncated: both are this race.
    assert f" on {name}: " in result.explanation
    assert result.reproduction_successes == 5


def test_file_counter_on_separate_files_holds_in_one_execution(tmp_path: Path) -> None:
    result = explore_dpor(
        setup=lambda: FileCounter(tmp_path, ("a", "b")),
        threads=[lambda s: increment_file(s.paths[0]), lambda s: increment_file(s.paths[1])],
        invariant=lambda s: s.total() == 2,
        preemption_bound=None,
    )
    assert result.property_holds
    assert result.exhausted
    assert result.num_explored == 1


def test_file_counter_under_a_lock_holds(tmp_path: Path) -> None:
    def locked_increment(s: FileCounter) -> None:
        with s.lock:
            increment_file(s.paths[0])

    result = explore_dpor(
        setup=lambda: FileCounter(tmp_path),
        threads=[locked_increment, locked_increment],
        invariant=lambda s: s.total() == 2,
        preemption_bound=None,
    )
    assert result.property_holds
    assert result.exhausted
    assert not result.inconclusive
    # Both orders of the two critical sections were run.
    assert result.num_explored >= 2


def test_file_race_is_found_through_pathlib(tmp_path: Path) -> None:
    def increment(s: FileCounter) -> None:
        current = int(s.paths[0].read_text())
        s.paths[0].write_text(str(current + 1))

    result = explore_dpor(lambda: FileCounter(tmp_path), [increment, increment], lambda s: s.total() == 2)
    assert not result.property_holds
    assert "file:" in (result.explanation or "")


def test_open_modes_map_to_reads_and_writes(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_text("")
    modes = ["r", "rb", "w", "a", "x", "r+", "wb"]

    def opens(_: object) -> None:
        for mode in modes:
            if mode == "x":
                path.unlink()
            with open(path, mode):
                pass

    seen = [(kind, loc) for _, kind, loc, _ in record_accesses(lambda: None, [opens]) if loc.startswith("file:")]
    name = f"file:{os.path.realpath(path)}"
    expected = ["read", "read", "write", "write", "write", "write", "write"]
    assert seen == [(kind, name) for kind in expected]


def test_file_names_resolve_symlinks_and_relative_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (real / "data").write_text("1")
    (tmp_path / "link").symlink_to(real)
    monkeypatch.chdir(tmp_path)

    def reads(_: object) -> None:
        open("link/data").close()
        open(tmp_path / "real" / "data").close()
        with open(os.open("link/data", os.O_RDONLY), closefd=True):
            pass

    locations = {loc for _, _, loc, _ in record_accesses(lambda: None, [reads]) if loc.startswith("file:")}
    assert locations == {f"file:{os.path.realpath(real / 'data')}"}


def test_devices_and_stdio_are_not_resources(tmp_path: Path) -> None:
    def touches(_: object) -> None:
        with open(os.devnull, "w") as f:
            f.write("x")
        os.write(1, b"")

    assert [loc for _, _, loc, _ in record_accesses(lambda: None, [touches]) if loc.startswith("file:")] == []


def os_increment(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        current = int(os.read(fd, 100))
    finally:
        os.close(fd)
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, str(current + 1).encode())
    finally:
        os.close(fd)


def test_os_level_file_race_is_found_with_or_without_the_preload_library(tmp_path: Path) -> None:
    result = explore_dpor(
        setup=lambda: FileCounter(tmp_path),
        threads=[lambda s: os_increment(str(s.paths[0])), lambda s: os_increment(str(s.paths[0]))],
        invariant=lambda s: s.total() == 2,
        reproduce_on_failure=0,
    )
    # Found as a lost update or as a read of a just-truncated file.
    assert not result.property_holds
    assert f" on file:{os.path.realpath(tmp_path / 'counter')}: " in (result.explanation or "")
    # Under the library its events report the calls, and the Python-level
    # wrappers pass through; without it, the wrappers report them.
    assert (result.native_events > 0) == _preload_loaded()


def test_socket_and_os_wrappers_defer_to_the_library_s_events() -> None:
    kinds: list[int] = []
    record_accesses(lambda: None, [lambda _: kinds.append(_engine.io_worker())])
    # record_accesses reads no native events: its workers are plain workers.
    assert kinds == [1]
    result = explore_dpor(lambda: None, [lambda _: kinds.append(_engine.io_worker())], lambda _: True)
    assert result.property_holds
    assert kinds == [1, 2 if _preload_loaded() else 1]
    assert _engine.io_worker() == 0


def test_os_read_and_write_name_the_descriptor_file(tmp_path: Path) -> None:
    path = tmp_path / "counter"
    path.write_text("5")
    # The wrappers installed by hand: with detect_io=False the exploration
    # neither installs them nor reads the library's events.
    _io.install()
    try:
        seen = record_accesses(lambda: None, [lambda _: os_increment(str(path))], detect_io=False)
    finally:
        _io.uninstall()
    assert path.read_text() == "6"
    name = f"file:{os.path.realpath(path)}"
    assert [(kind, loc) for _, kind, loc, _ in seen if loc.startswith("file:")] == [
        ("read", name),  # os.open(O_RDONLY)
        ("read", name),  # os.read
        ("write", name),  # os.open(O_WRONLY | O_TRUNC)
        ("write", name),  # os.write
    ]
    assert os.read is ORIGINAL_OS_READ


def test_replay_of_a_file_race_needs_the_same_detect_io(tmp_path: Path) -> None:
    def setup() -> FileCounter:
        return FileCounter(tmp_path)

    threads = [lambda s: increment_file(s.paths[0]), lambda s: increment_file(s.paths[0])]
    result = explore_dpor(setup, threads, lambda s: s.total() == 2, reproduce_on_failure=0)
    assert result.counterexample is not None
    replayed = frontrun.replay(result.counterexample, setup, threads, lambda s: s.total() == 2)
    assert replayed.failed
    assert replayed.schedule == result.counterexample


def test_io_inside_a_critical_section_still_conflicts_with_an_unlocked_reader(tmp_path: Path) -> None:
    # I/O inside a critical section is reported where it happens, not with
    # the release: the reader takes no lock, so it can run between the write
    # and the release, and only an access reported at the write is reordered
    # before it.
    def locked_write(s: FileCounter) -> None:
        with s.lock:
            s.paths[0].write_text("1")

    def unlocked_read(s: FileCounter) -> None:
        s.seen = s.paths[0].read_text()

    result = explore_dpor(
        setup=lambda: FileCounter(tmp_path),
        threads=[locked_write, unlocked_read],
        invariant=lambda s: s.seen == "1",
        preemption_bound=None,
    )
    assert not result.property_holds
    assert "file:" in (result.explanation or "")


def test_io_of_a_thread_that_ends_holding_its_lock_is_not_lost(tmp_path: Path) -> None:
    def write_and_keep_lock(s: FileCounter) -> None:
        s.lock.acquire()
        s.paths[0].write_text("1")

    def unlocked_read(s: FileCounter) -> None:
        s.seen = s.paths[0].read_text()

    result = explore_dpor(
        setup=lambda: FileCounter(tmp_path),
        threads=[write_and_keep_lock, unlocked_read],
        invariant=lambda s: s.seen == "1",
        preemption_bound=None,
    )
    assert not result.property_holds
    assert "file:" in (result.explanation or "")


def test_io_inside_a_critical_section_costs_what_memory_accesses_there_cost(tmp_path: Path) -> None:
    class Memory:
        def __init__(self) -> None:
            self.value = 0
            self.lock = threading.Lock()

    def file_increment(s: FileCounter) -> None:
        with s.lock:
            increment_file(s.paths[0])

    def memory_increment(s: Memory) -> None:
        with s.lock:
            current = s.value
            s.value = current + 1

    for bound in (None, 2):
        on_file = explore_dpor(
            lambda: FileCounter(tmp_path),
            [file_increment] * 3,
            lambda s: s.total() == 3,
            preemption_bound=bound,
            stop_on_first=False,
        )
        in_memory = explore_dpor(
            Memory, [memory_increment] * 3, lambda s: s.value == 3, preemption_bound=bound, stop_on_first=False
        )
        assert on_file.property_holds and in_memory.property_holds
        assert on_file.exhausted and in_memory.exhausted
        assert on_file.num_explored == in_memory.num_explored, bound
