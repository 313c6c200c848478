"""What an exploration does once, not per replay or per call: the
explanation of a failure, the disassembly of a code object, the imports of
code a passing exploration never runs; and the package's modules import
each other without a cycle."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import frontrun
import pytest
from _helpers import explore
from frontrun import _explain, _opcodes

PACKAGE = Path(frontrun.__file__).resolve().parent


class Counter:
    def __init__(self) -> None:
        self.value = 0


def increment(c: Counter) -> None:
    tmp = c.value
    c.value = tmp + 1


def test_replays_of_a_failure_check_it_without_explaining_it_again(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[int] = []
    real = _explain.explain

    def counting(**kwargs: Any) -> str:
        built.append(kwargs["num_explored"])
        return real(**kwargs)

    monkeypatch.setattr(_explain, "explain", counting)
    result = explore(Counter, [increment, increment], lambda c: c.value == 2, reproduce_on_failure=6)
    assert result.property_holds is False
    assert (result.reproduction_attempts, result.reproduction_successes) == (6, 6)
    assert built == [result.num_explored]  # once, from the failing execution
    assert "Reproduced 6/6 times." in (result.explanation or "")


_checks: list[int] = []


def fails_the_first_time_only(c: Counter) -> bool:
    if c.value == 2:
        return True
    _checks.append(c.value)
    return len(_checks) > 1


def test_a_failure_that_does_not_come_back_is_counted_as_not_reproduced() -> None:
    _checks.clear()
    result = explore(Counter, [increment, increment], fails_the_first_time_only, reproduce_on_failure=4)
    assert result.property_holds is False
    assert (result.reproduction_attempts, result.reproduction_successes) == (4, 0)
    assert "Reproduced 0/4 times." in (result.explanation or "")


def raise_once_seen(c: Counter) -> None:
    tmp = c.value
    c.value = tmp + 1
    if c.value == 1 and _raised_in == []:
        _raised_in.append(1)
        raise RuntimeError("only in the first execution that gets here")


_raised_in: list[int] = []


def test_a_replay_that_raises_in_a_thread_reproduces_and_one_that_does_not_raise_does_not() -> None:
    _raised_in.clear()
    result = explore(Counter, [raise_once_seen, increment], lambda c: True, reproduce_on_failure=3)
    assert result.property_holds is False and result.errors
    # The exception came from the first execution only: the replays pass.
    assert (result.reproduction_attempts, result.reproduction_successes) == (3, 0)


def test_a_code_object_is_disassembled_once_for_every_exploration_of_the_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    disassembled: list[Any] = []
    real = _opcodes._classify

    def counting(code: Any) -> Any:
        disassembled.append(code)
        return real(code)

    monkeypatch.setattr(_opcodes, "_classify", counting)

    def bump(c: Counter) -> None:  # a code object no other test has met
        c.value = c.value + 1

    for _ in range(3):
        result = explore(Counter, [bump, bump], lambda c: c.value == 2, reproduce_on_failure=2)
        assert result.property_holds is False
    assert disassembled.count(bump.__code__) == 1


def test_importing_frontrun_and_resolving_explore_dpor_loads_no_failure_or_report_code() -> None:
    probe = textwrap.dedent(
        """
        import sys
        import frontrun
        frontrun.explore_dpor
        late = ["frontrun._explain", "frontrun._report_build", "frontrun._report_model", "frontrun._report_html",
                "frontrun._deadlock", "frontrun.cli", "frontrun._io", "frontrun._runtime_hooks"]
        print("loaded:", [m for m in late if m in sys.modules])
        """
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert "loaded: []" in out.stdout


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The package modules ``path`` imports when it runs (imports inside
    functions included, ``if TYPE_CHECKING:`` blocks excluded)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            node.body = []
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module is not None:
            if node.module == "frontrun":
                found.update(f"frontrun.{alias.name}" for alias in node.names)
            else:
                found.add(node.module)
    return {name for name in found if name in modules}


def test_no_two_modules_of_the_package_import_each_other_even_indirectly() -> None:
    files = {("frontrun" if p.name == "__init__.py" else f"frontrun.{p.stem}"): p for p in PACKAGE.glob("*.py")}
    graph = {name: _imports(path, set(files)) - {name} for name, path in files.items()}
    assert graph["frontrun.dpor"], "the import scan found nothing: it is broken"
    cycles = []

    def visit(name: str, path: list[str]) -> None:
        for target in graph[name]:
            if target in path:
                cycles.append([*path[path.index(target) :], target])
            elif target not in done:
                visit(target, [*path, target])
        done.add(name)

    done: set[str] = set()
    for name in sorted(graph):
        if name not in done:
            visit(name, [name])
    assert cycles == []
