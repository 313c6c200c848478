"""docs/api.md agrees with the package: the exported names, the
signatures, the result fields, and the native module's stubs."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
from pathlib import Path

import frontrun
import frontrun._engine

ROOT = Path(__file__).resolve().parents[2]
API = ROOT / "docs" / "api.md"
STUBS = ROOT / "bindings" / "python" / "frontrun" / "_engine.pyi"


def sections() -> dict[str, str]:
    """``## `name``` heading -> the text up to the next heading."""
    parts = re.split(r"^## ", API.read_text(encoding="utf-8"), flags=re.M)[1:]
    found = {}
    for part in parts:
        heading, _, body = part.partition("\n")
        match = re.fullmatch(r"`([\w.]+)`", heading.strip())
        if match:
            found[match.group(1)] = body
    return found


def bare_signature(obj: object) -> str:
    sig = inspect.signature(obj)
    sig = sig.replace(
        parameters=[p.replace(annotation=inspect.Parameter.empty) for p in sig.parameters.values()],
        return_annotation=inspect.Signature.empty,
    )
    return str(sig)


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def test_every_exported_name_has_a_section_and_every_section_an_exported_name() -> None:
    assert sorted(sections()) == sorted(frontrun.__all__)


def test_documented_signatures_are_the_functions_own() -> None:
    for name, body in sections().items():
        obj = getattr(frontrun, name)
        if not inspect.isfunction(obj):
            continue
        block = re.search(r"```python\n(.*?)```", body, re.S)
        assert block is not None, f"docs/api.md: no signature block under {name}"
        assert squeeze(block.group(1)) == squeeze(name + bare_signature(obj)), name


def test_field_tables_list_the_dataclass_fields() -> None:
    for name, body in sections().items():
        obj = getattr(frontrun, name)
        if not (inspect.isclass(obj) and dataclasses.is_dataclass(obj)):
            continue
        documented = re.findall(r"^\| `(\w+)` \|", body, re.M)
        assert documented == [f.name for f in dataclasses.fields(obj)], name


def stub_names() -> set[str]:
    tree = ast.parse(STUBS.read_text(encoding="utf-8"))
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {n for n in names if not n.startswith("_")}


def test_the_native_names_match_the_stubs_and_the_built_module() -> None:
    text = API.read_text(encoding="utf-8")
    block = re.search(r"<!-- native-names -->(.*?)<!-- /native-names -->", text, re.S).group(1)
    documented = set(re.findall(r"`(\w+)`", block))
    built = {n for n in dir(frontrun._engine) if not n.startswith("_")}
    assert documented == stub_names() == built
