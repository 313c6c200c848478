"""Driver of ``scripts/bench gate``: ns per native lock/unlock pair, no
library vs observed vs gated (see scripts/bench.d/gate)."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAIRS = int(os.environ.get("FRONTRUN_BENCH_PAIRS", "20000"))
RUNS = 5


def build(out: Path) -> None:
    target = out / ("_native_locks" + sysconfig.get_config_var("EXT_SUFFIX"))
    include = sysconfig.get_paths()["include"]
    source = ROOT / "tests" / "native" / "native_locks.c"
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-I", include, "-o", str(target), str(source)], check=True)


def child(build_dir: str, mode: str) -> None:
    sys.path.insert(0, build_dir)
    import _native_locks

    if mode == "plain":
        _native_locks.pairs(1000)
        start = time.perf_counter_ns()
        _native_locks.pairs(PAIRS)
        print(f"NS {(time.perf_counter_ns() - start) / PAIRS:.1f}")
        return
    import frontrun

    times: list[float] = []

    def work(_: object) -> None:
        start = time.perf_counter_ns()
        _native_locks.pairs(PAIRS)
        times.append((time.perf_counter_ns() - start) / PAIRS)

    # The worker times itself: on the machine's clock, not the workers'
    # virtual one.
    result = frontrun.explore_dpor(
        lambda: None,
        [work],
        lambda _: True,
        max_branches=4 * PAIRS + 1000,
        timeout_per_run=600.0,
        virtual_time=False,
    )
    assert result.property_holds and not result.inconclusive, result.explanation
    print(f"NS {times[-1]:.1f} EVENTS {result.native_events}")


def run(build_dir: str, mode: str) -> tuple[float, int]:
    env = dict(os.environ)
    env.pop("FRONTRUN_RING", None)
    env.pop("FRONTRUN_MUTEX_GATE", None)
    if mode == "plain":
        env.pop("LD_PRELOAD", None)
        env["FRONTRUN_RUNTIME_HOOKS"] = "0"
    else:
        import frontrun

        env["LD_PRELOAD"] = frontrun.preload_path()
        if mode == "observed":
            env["FRONTRUN_MUTEX_GATE"] = "0"
    out = subprocess.run(
        [sys.executable, __file__, "child", build_dir, mode], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    return float(out[out.index("NS") + 1]), int(out[out.index("EVENTS") + 1]) if "EVENTS" in out else 0


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        build(Path(tmp))
        best: dict[str, float] = {}
        events: dict[str, int] = {}
        for _ in range(RUNS):
            for mode in ("plain", "observed", "gated"):
                ns, n = run(tmp, mode)
                best[mode] = min(best.get(mode, ns), ns)
                events[mode] = n
    print(f"native mutex lock+unlock pair, ns (fastest of {RUNS} processes, {PAIRS} pairs each, one worker):")
    print(f"  no library                        {best['plain']:10.1f}")
    print(f"  explored, observed (2 events)     {best['observed']:10.1f}   events {events['observed']}")
    print(f"  explored, gated (2 steps)         {best['gated']:10.1f}   events {events['gated']}")
    print(
        f"gated / observed: {best['gated'] / best['observed']:.1f}x; gated / no library: "
        f"{best['gated'] / best['plain']:.0f}x (the machine may be shared: compare within one run)"
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        child(sys.argv[2], sys.argv[3])
    else:
        main()
