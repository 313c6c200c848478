"""The worked example of docs/async.md prints what the page shows."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "async.md"


def test_the_worked_example_prints_the_explanation_the_page_shows(tmp_path: Path) -> None:
    text = DOC.read_text(encoding="utf-8")
    example = re.findall(r"```python\n(.*?)```", text, re.S)[0]
    shown = re.findall(r"```\n(Race found.*?)```", text, re.S)[0]
    (tmp_path / "bank.py").write_text(example, encoding="utf-8")
    run = subprocess.run(
        [sys.executable, "bank.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout == shown
