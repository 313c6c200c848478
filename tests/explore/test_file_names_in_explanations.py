"""Explanations name a file by the path a reader looks it up by: relative
to the project root, to the site-packages directory of an installed
package, or to the standard library's directory, never by a bare name
that every package shares (``__init__.py``)."""

from __future__ import annotations

import concurrent.futures.thread
import importlib.util
import os
import re
import threading
from pathlib import Path

import cachetools
import pytest
from frontrun import _stats, explore_dpor, replay
from frontrun._display import resource_name, source_path
from frontrun._explain import WHERE_WIDTH

HERE = Path(__file__).resolve()
STEP = re.compile(r"^  thread (\d) \| (\S+)")


class Counter:
    def __init__(self) -> None:
        self.value = 0

    def increment(self) -> None:
        current = self.value
        self.value = current + 1


def step_lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.startswith("  thread ")]


def test_a_project_file_is_named_relative_to_the_pytest_rootdir(pytestconfig: pytest.Config) -> None:
    run = replay([0, 1, 1, 0], Counter, [Counter.increment] * 2, lambda c: c.value == 2, detect_io=False)
    relative = HERE.relative_to(pytestconfig.rootpath).as_posix()
    line = Counter.increment.__code__.co_firstlineno
    assert f"0 = Counter.increment ({relative}:{line})" in run.explanation
    assert [STEP.match(ln).group(2) for ln in step_lines(run.explanation)] == [
        f"{relative}:{line + 1}",
        f"{relative}:{line + 1}",
        f"{relative}:{line + 2}",
        f"{relative}:{line + 2}",
    ]


def test_an_installed_package_is_named_relative_to_its_site_packages_directory() -> None:
    def put_a(cache: cachetools.Cache) -> None:
        cache["a"] = 1

    def put_b(cache: cachetools.Cache) -> None:
        cache["b"] = 2

    result = explore_dpor(
        lambda: cachetools.Cache(maxsize=10), [put_a, put_b], lambda c: c.currsize == len(c), detect_io=False
    )
    assert not result.property_holds
    places = {STEP.match(ln).group(2).rsplit(":", 1)[0] for ln in step_lines(result.explanation)}
    assert places == {"cachetools/__init__.py"}, result.explanation
    assert os.sep + "site-packages" not in result.explanation


def test_the_standard_library_is_named_relative_to_its_directory() -> None:
    assert source_path(threading.__file__) == "threading.py"
    assert source_path(concurrent.futures.thread.__file__) == "concurrent/futures/thread.py"


def test_the_project_root_is_the_current_directory_outside_pytest(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "pkg" / "__init__.py"
    target.parent.mkdir()
    target.write_text("")
    assert source_path(str(target)) == str(target)
    monkeypatch.setattr(_stats, "DEFAULTS", _stats.Defaults())
    monkeypatch.chdir(tmp_path)
    assert source_path(str(target)) == "pkg/__init__.py"
    monkeypatch.setattr(_stats, "DEFAULTS", _stats.Defaults(project_root=str(target.parent)))
    assert source_path(str(target)) == "__init__.py"


def test_names_that_are_not_paths_are_kept() -> None:
    assert source_path("<string>") == "<string>"
    assert source_path("<frozen importlib._bootstrap>") == "<frozen importlib._bootstrap>"
    assert source_path("") == ""


def test_commit_order_pseudo_tables_are_named_as_the_table_or_row_they_order() -> None:
    assert resource_name("sql:<commits:stock>#id=1") == "sql:stock#id=1"
    assert resource_name("sql:<commits:orders>") == "sql:orders"
    assert resource_name("sql:localhost:5432/<commits:stock>") == "sql:localhost:5432/stock"
    assert resource_name("sql:stock#id=1") == "sql:stock#id=1"
    assert resource_name("socket:127.0.0.1:5432") == "socket:127.0.0.1:5432"


WORKER = """
def increment(counter):
    current = counter.value
    counter.value = current + 1
"""


def load(path: Path, name: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(WORKER)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_long_path_gets_a_line_of_its_own_and_the_source_column_stays(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(_stats, "DEFAULTS", _stats.Defaults(project_root=str(tmp_path)))
    short = load(tmp_path / "short.py", "frontrun_test_short_path")
    long_path = Path(*["a_rather_long_directory_name"] * 3, "worker_module.py")
    deep = load(tmp_path / long_path, "frontrun_test_long_path")
    assert len(f"{long_path}:4") > WHERE_WIDTH
    run = replay([0, 1, 1, 0], Counter, [short.increment, deep.increment], lambda c: c.value == 2, detect_io=False)
    text = run.explanation.splitlines()
    start = text.index("Interleaving (steps that touch shared locations):") + 1
    block = text[start : text.index("", start)]
    # thread 0: short.py on the step's line; thread 1: its path alone, the
    # source on the next line.
    assert [ln.split("|")[1].split()[0] if "|" in ln else "" for ln in block] == [
        "short.py:3",
        f"{long_path}:3",
        "",
        f"{long_path}:4",
        "",
        "short.py:4",
    ]
    assert block[1] == f"  thread 1 | {long_path}:3"
    sources = [block[0], block[2], block[4], block[5]]
    columns = {
        ln.index(src) for ln, src in zip(sources, ["current", "current", "counter.value", "counter.value"], strict=True)
    }
    assert len(columns) == 1, "\n".join(block)
    # The short path's column is no wider than the usual 24 characters.
    assert columns == {len("  thread 0 | ") + 24 + 1}, "\n".join(block)
