"""Memory of long explorations: peak RSS of exhaustive lastzero(N), this
project only (the peer hits the time cap from N=4), N from 2 to 13.

    python memory.py OUT_JSON [N_MAX]

Each N runs in a fresh process (workloads.py), so each peak is that
exploration's own. lastzero(13) has 32,768 traces: the explorer keeps the
frontier of sequences still to explore, and memory that grew with every
execution, kept after it was needed, shows up here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def point(n: int, cap: float) -> dict[str, Any]:
    cmd = [sys.executable, str(HERE / "workloads.py"), "ours", "lastzero", str(n), "exhaustive", str(cap)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd="/tmp", timeout=cap + 60)
    lines = out.stdout.strip().splitlines()
    try:
        record: dict[str, Any] = json.loads(lines[-1])
    except (IndexError, ValueError):
        tail = (out.stderr.strip().splitlines() or ["no output"])[-1]
        return {"n": n, "error": f"exit status {out.returncode}: {tail[:300]}"}
    record["n"] = n
    # The closed form tests/bench checks against optimal.py's enumeration.
    record["traces"] = (n + 3) * 2 ** (n - 2)
    return record


def main() -> None:
    out_json = Path(sys.argv[1])
    n_max = int(sys.argv[2]) if len(sys.argv) > 2 else 13
    cap = float(os.environ.get("CAP_S", "300"))
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    points = []
    for n in range(2, n_max + 1):
        p = point(n, cap)
        points.append(p)
        if "error" in p:
            print(f"lastzero({n}): {p['error']}", flush=True)
        else:
            print(
                f"lastzero({n}): {p['executions']} executions in {p['seconds']:.2f} s, "
                f"peak RSS {p['peak_rss_kib'] / 1024:.1f} MiB ({p['peak_rss_kib_before'] / 1024:.1f} MiB before)",
                flush=True,
            )
    out_json.parent.mkdir(parents=True, exist_ok=True)
    meta = {"started": started, "python": sys.version.split()[0], "cap_s": cap}
    out_json.write_text(json.dumps({"meta": meta, "points": points}, indent=1) + "\n")


if __name__ == "__main__":
    main()
