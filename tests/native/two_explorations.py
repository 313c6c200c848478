"""Two explorations at the same time in one process under the preload
library, each with its own file counter: both must see their workers'
os.read/os.write calls (the ring's consumer is shared, each event goes to
the exploration whose worker made it). Prints one line ``RESULT <json>``.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from typing import Any

import frontrun

DIR = tempfile.mkdtemp()


def hunt(name: str, out: dict[str, Any]) -> None:
    path = os.path.join(DIR, name)

    def setup() -> str:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, b"0")
        os.close(fd)
        return path

    def increment(p: str) -> None:
        fd = os.open(p, os.O_RDWR)
        value = int(os.read(fd, 32))
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, str(value + 1).encode())
        os.close(fd)

    def holds(p: str) -> bool:
        with open(p) as f:
            return f.read() == "2"

    r = frontrun.explore_dpor(setup, [increment, increment], holds, preemption_bound=None)
    os.unlink(path)
    out[name] = {
        "holds": r.property_holds,
        "native_events": r.native_events,
        "inconclusive": r.inconclusive,
        "mentions_own_file": f"file:{path}" in (r.explanation or ""),
    }


results: dict[str, Any] = {}
threads = [threading.Thread(target=hunt, args=(name, results)) for name in ("a", "b")]
for t in threads:
    t.start()
for t in threads:
    t.join()
os.rmdir(DIR)
print("RESULT " + json.dumps(results))
