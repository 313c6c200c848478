"""What the pytest plugin costs a test suite that never explores.

Two tests, run by pytest in a subprocess, each timing itself:

* ``uncontended``: one thread, ``with lock:`` around a small update, for a
  lock made at import time and one made inside the test;
* ``producer_consumer``: two threads handing items over a ``queue.Queue``
  and a ``threading.Condition`` (contended locks, waits, wake-ups).

Modes: without the plugin (``-p no:frontrun``, the baseline), with it as
installed (the default), with the hooks installed at run time (as after an
earlier test explored under plain pytest), with ``--frontrun-patch-locks``
(the cooperative classes for the whole run), and under the ``frontrun``
wrapper (the preload library's pass-through hooks on every pthread call).
Then, in one process, the cost of one ``os.write`` call before and after
the hooks are installed at run time. The best of REPS runs
per mode is compared with the baseline's best.

    python plugin.py PYTHON OUT.json [REPS]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

SUITE = """
import json, os, queue, threading, time

IMPORT_LOCK = threading.Lock()
N = 300_000
ITEMS = 30_000


def _record(name, seconds):
    with open(os.environ["BENCH_OUT"], "a") as f:
        f.write(json.dumps({"test": name, "seconds": seconds}) + "\\n")


def test_uncontended():
    local = threading.Lock()
    box = [0]
    start = time.perf_counter()
    for _ in range(N):
        with IMPORT_LOCK:
            box[0] += 1
        with local:
            box[0] += 1
    _record("uncontended", time.perf_counter() - start)
    assert box[0] == 2 * N


def test_producer_consumer():
    q = queue.Queue(maxsize=64)
    cond = threading.Condition()
    done = []

    def produce():
        for i in range(ITEMS):
            q.put(i)
        q.put(None)

    def consume():
        while q.get() is not None:
            with cond:
                cond.notify()
        with cond:
            done.append(True)
            cond.notify_all()

    start = time.perf_counter()
    threads = [threading.Thread(target=produce), threading.Thread(target=consume)]
    for t in threads:
        t.start()
    with cond:
        cond.wait_for(lambda: done, timeout=60)
    for t in threads:
        t.join()
    _record("producer_consumer", time.perf_counter() - start)
    assert done
"""

MODES = {
    "no plugin": ["-p", "no:frontrun"],
    "plugin (default)": [],
    "plugin, hooks installed at run time": [],
    "plugin --frontrun-patch-locks": ["--frontrun-patch-locks"],
    "frontrun pytest": [],
}

#: As after an earlier test explored with detect_io under plain pytest.
CONFTEST = """
import os
if os.environ.get("BENCH_RUNTIME_HOOKS") == "1":
    from frontrun import _engine, preload_path
    _engine.install_runtime_hooks(preload_path())
"""

#: One process: os.write to /dev/null per call, before and after the
#: hooks are installed at run time (no exploration attached).
PER_CALL = """
import os, sys, time
from frontrun import _engine, preload_path
fd = os.open(os.devnull, os.O_WRONLY)
N = 300_000
def per_call():
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(N):
            os.write(fd, b"x")
        best = min(best, (time.perf_counter() - start) / N)
    return best
before = per_call()
_engine.install_runtime_hooks(preload_path())
after = per_call()
print(before, after)
"""


def run(python: str, mode: str, directory: Path) -> dict[str, float]:
    out = directory / "times.jsonl"
    out.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD" and not k.startswith("FRONTRUN_")}
    env["BENCH_OUT"] = str(out)
    if mode == "plugin, hooks installed at run time":
        env["BENCH_RUNTIME_HOOKS"] = "1"
    args = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "test_bench_plugin.py", *MODES[mode]]
    if mode == "frontrun pytest":
        command = [str(Path(python).parent / "frontrun"), python, *args]
    else:
        command = [python, *args]
    proc = subprocess.run(command, cwd=directory, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"bench plugin: {mode}: pytest failed\n{proc.stdout}\n{proc.stderr}")
    times: dict[str, float] = {}
    for line in out.read_text().splitlines():
        record = json.loads(line)
        times[record["test"]] = record["seconds"]
    return times


def main() -> None:
    python, target = sys.argv[1], Path(sys.argv[2])
    reps = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    best: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="frontrun-bench-plugin-") as tmp:
        directory = Path(tmp)
        (directory / "test_bench_plugin.py").write_text(SUITE)
        (directory / "conftest.py").write_text(CONFTEST)
        for _ in range(reps):
            # Modes interleaved, so drift in the machine's load spreads evenly.
            for mode in MODES:
                for test, seconds in run(python, mode, directory).items():
                    slot = best.setdefault(mode, {})
                    slot[test] = min(seconds, slot.get(test, float("inf")))
    base = best["no plugin"]
    rows = []
    print(f"{'mode':36} {'test':18} {'best s':>8} {'ratio':>6}")
    for mode, times in best.items():
        for test, seconds in times.items():
            ratio = seconds / base[test]
            rows.append({"mode": mode, "test": test, "seconds": seconds, "ratio": ratio})
            print(f"{mode:36} {test:18} {seconds:8.4f} {ratio:6.2f}")
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD" and not k.startswith("FRONTRUN_")}
    measured = subprocess.run([python, "-c", PER_CALL], env=env, capture_output=True, text=True, check=True)
    before, after = (float(x) for x in measured.stdout.split())
    print(
        f"os.write to /dev/null per call: {before * 1e9:.0f} ns without hooks, {after * 1e9:.0f} ns "
        f"with hooks installed at run time and no exploration attached (+{(after - before) * 1e9:.0f} ns)"
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    record = {"reps": reps, "python": python, "rows": rows, "write_ns": {"plain": before * 1e9, "hooked": after * 1e9}}
    target.write_text(json.dumps(record, indent=2) + "\n")
    worst = max(r["ratio"] for r in rows if r["mode"] == "plugin (default)")
    print(f"plugin (default), worst ratio to no plugin: {worst:.2f} (target: at most 1.20)")


if __name__ == "__main__":
    main()
