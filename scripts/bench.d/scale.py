"""Scale: how far each tool gets on lastzero(N) and readers(N), exhaustive
full DPOR, within a time cap per point.

    python scale.py OUR_PYTHON PEER_PYTHON OUT_JSON

For each workload and tool, N goes up from 2, one fresh process per point
(workloads.py), until a point does not finish within SCALE_CAP_S seconds
(default 60) or N reaches SCALE_N_MAX (default 24); that last point is
recorded too, as capped, with the executions it reached. Records the
executions, the time, the executions per second and the peak RSS of each
point; the largest N that finished is the tool's reach.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import suite  # noqa: E402

WORKLOADS = ("lastzero", "readers")


def series(exe: str, tool: str, name: str, cap: float, n_max: int, env: dict[str, str]) -> list[dict[str, Any]]:
    points = []
    for n in range(2, n_max + 1):
        s = suite.sample(exe, tool, name, n, "exhaustive", cap, env)
        s.pop("traceback", None)
        s["n"] = n
        if "error" in s or "unsupported" in s:
            s["status"] = "failed"
        elif s["seconds"] >= 0.97 * cap or s.get("exhausted") is False:
            s["status"] = "capped"
        else:
            s["status"] = "ok"
        if "seconds" in s and s["seconds"] > 0:
            s["executions_per_s"] = s["executions"] / s["seconds"]
        points.append(s)
        rate = f"{s['executions_per_s']:,.0f} executions/s" if "executions_per_s" in s else s.get("error", "")
        rss = f", peak RSS {s['peak_rss_kib'] / 1024:.1f} MiB" if "peak_rss_kib" in s else ""
        print(
            f"{name}({n}) {tool}: {s['status']}, {s.get('executions', '-')} executions in "
            f"{s.get('seconds', 0):.2f} s, {rate}{rss}",
            flush=True,
        )
        if s["status"] != "ok":
            break
    return points


def main() -> None:
    ours_py, peer_py, out_json = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    cap = float(os.environ.get("SCALE_CAP_S", "60"))
    n_max = int(os.environ.get("SCALE_N_MAX", "24"))
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    started = time.perf_counter()
    results: dict[str, Any] = {
        "meta": {
            "python": platform.python_version(),
            "cap_s": cap,
            "n_max": n_max,
            "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        },
        "series": {},
    }
    for name in WORKLOADS:
        results["series"][name] = {
            tool: series(exe, tool, name, cap, n_max, env) for tool, exe in (("ours", ours_py), ("peer", peer_py))
        }
    results["meta"]["total_seconds"] = time.perf_counter() - started
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {out_json} ({results['meta']['total_seconds']:.0f} s)")


if __name__ == "__main__":
    main()
