"""The binding crate's files form no import circle: no module of
bindings/src uses, even indirectly, a module that uses it back. (The same
for the Python package is checked in tests/explore/test_costs_paid_once.py.)

A module's uses are read from its source: ``crate::a::b`` paths (``use``
lines, groups ``use crate::{a, b::c}``, and paths in code), ``super::``
paths, and paths through its own child modules (``child::Item``). Each
path counts as a use of the deepest module it names."""

from __future__ import annotations

import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "bindings" / "src"


def module_of(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] in ("mod", "lib"):
        parts.pop()
    return "::".join(["crate", *parts])


def uses(text: str, module: str, modules: set[str]) -> set[str]:
    def deepest(path: str) -> str | None:
        parts = path.split("::")
        for k in range(len(parts), 1, -1):
            if "::".join(parts[:k]) in modules:
                return "::".join(parts[:k])
        return None

    text = re.sub(r"//[^\n]*", "", text)
    paths = re.findall(r"\bcrate(?:::\w+)+", text)
    for group in re.findall(r"\buse\s+crate::\{([^;]*)\}\s*;", text, re.S):
        paths += [f"crate::{name}" for name in re.findall(r"(?<![\w:])(\w+)\s*(?=::|,|\}|$)", group)]
    parent = module.rsplit("::", 1)[0]
    paths += [parent + p[len("super") :] for p in re.findall(r"\bsuper(?:::\w+)+", text)]
    for child in re.findall(r"^\s*(?:pub(?:\([\w:]+\))?\s+)?mod\s+(\w+)\s*;", text, re.M):
        if re.search(rf"(?<![\w:]){child}::", text):
            paths.append(f"{module}::{child}")
    return {m for m in map(deepest, paths) if m is not None and m != module}


def test_no_two_files_of_the_binding_crate_use_each_other_even_indirectly() -> None:
    files = {module_of(p): p for p in SRC.rglob("*.rs")}
    graph = {m: uses(p.read_text(encoding="utf-8"), m, set(files)) for m, p in files.items()}
    assert "crate::session::turns" in graph["crate::session"], "the scan found nothing: it is broken"
    cycles = []

    def visit(name: str, path: list[str]) -> None:
        for target in sorted(graph[name]):
            if target in path:
                cycles.append(" -> ".join([*path[path.index(target) :], target]))
            elif target not in done:
                visit(target, [*path, target])
        done.add(name)

    done: set[str] = set()
    for name in sorted(graph):
        if name not in done:
            visit(name, [name])
    assert cycles == []
