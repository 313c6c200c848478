"""Fixed and per-execution overheads of this project (no peer):

    python overhead.py OUT_JSON [import] [first] [replay] [state]

- import: `import frontrun` and resolving `frontrun.explore_dpor` (which
  loads the explorer), in a fresh process.
- first: in a fresh process, import + the first `explore_dpor` of the
  2-thread counter (default arguments), then the same exploration again;
  the first call's extra cost is what a process pays once.
- replay: the cost of one replay of a failure (`reproduce_on_failure`),
  against the cost of one execution of the same program while exploring
  (the marginal cost of an execution of its exhaustive search), for the
  2-thread counter and a cachetools race (when cachetools is installed).
- state: readers(8), exhaustive, per execution, with K locks (cooperative
  ones, and real ones as a library that bound `threading.Lock` at import
  time makes) reachable from `setup()`'s state that no worker touches.

Every sample runs in a fresh process (`overhead.py --sample ...`), with the
package's bytecode cached as an installed package has it (the import is
also measured compiling the source, as under PYTHONDONTWRITEBYTECODE=1);
figures are medians over REPS samples (default 9). Writes OUT_JSON for the
report.
"""

from __future__ import annotations

# Only what the interpreter loads anyway: a sample measures what importing
# frontrun adds, so it must not have loaded frontrun's imports before.
import os
import sys
import time
from typing import Any

# --- workloads (they live in this file, so that they are traced) ------------


class Counter:
    def __init__(self) -> None:
        self.value = 0


def increment(c: Counter) -> None:
    tmp = c.value
    c.value = tmp + 1


class Shared:
    """One writer and N readers of `x`, with `locks` locks beside it that
    nobody takes (`kind` "coop": made by `threading.Lock` while the
    cooperative classes are installed; "real": the C lock itself)."""

    def __init__(self, locks: int = 0, kind: str = "coop") -> None:
        import _thread
        import threading

        self.x = 0
        make = threading.Lock if kind == "coop" else _thread.allocate_lock
        self.pool = [Holder(make()) for _ in range(locks)]


class Holder:
    def __init__(self, lock: Any) -> None:
        self.lock = lock


def writer(s: Shared) -> None:
    s.x = 1


def reader(s: Shared) -> None:
    _ = s.x


def put_a(cache: Any) -> None:
    cache["a"] = 1


def put_b(cache: Any) -> None:
    cache["b"] = 2


def make_cache() -> Any:
    import cachetools

    return cachetools.Cache(maxsize=10)


#: Failing programs whose replays are measured: (setup, threads, invariant).
REPLAYED = {
    "counter(2)": lambda: (Counter, [increment, increment], lambda c: c.value == 2),
    # A library race (Cache.__setitem__ loses a size update): more code per
    # step than the counter, so more to disassemble and explain.
    "cachetools": lambda: (make_cache, [put_a, put_b], lambda cache: cache.currsize == len(cache)),
}


def _explore(program: str = "counter(2)", **kwargs: Any) -> Any:
    from frontrun import explore_dpor

    setup, threads, invariant = REPLAYED[program]()
    return explore_dpor(setup, threads, invariant, **kwargs)


# --- one sample per process ---------------------------------------------------


def _clocks() -> tuple[float, float]:
    # Wall time, and the process's CPU time (all threads): the second is
    # what the work cost, whatever else the machine runs meanwhile.
    return time.perf_counter(), time.process_time()


def _ms(start: tuple[float, float], end: tuple[float, float], name: str) -> dict[str, float]:
    return {f"{name}_ms": (end[0] - start[0]) * 1e3, f"{name}_cpu_ms": (end[1] - start[1]) * 1e3}


def sample_import() -> dict[str, Any]:
    start = _clocks()
    import frontrun

    frontrun.explore_dpor  # noqa: B018 (the explorer is imported on first use)
    return _ms(start, _clocks(), "import")


def sample_first() -> dict[str, Any]:
    start = _clocks()
    import frontrun

    explore = frontrun.explore_dpor
    imported = _clocks()
    first = explore(Counter, [increment, increment], lambda c: c.value == 2)
    done_first = _clocks()
    second = explore(Counter, [increment, increment], lambda c: c.value == 2)
    done_second = _clocks()
    assert first.property_holds is False and second.property_holds is False
    return {
        **_ms(start, imported, "import"),
        **_ms(imported, done_first, "first"),
        **_ms(done_first, done_second, "second"),
    }


def sample_replay(program: str, replays: int) -> dict[str, Any]:
    try:
        REPLAYED[program]()[0]()
    except ImportError as exc:
        return {"unavailable": str(exc)}

    def timed(**kwargs: Any) -> tuple[float, Any]:
        start = time.perf_counter()
        result = _explore(program, detect_io=False, **kwargs)
        return time.perf_counter() - start, result

    def fastest(runs: int, **kwargs: Any) -> tuple[float, Any]:
        # The least disturbed of several runs (other processes share the CPU).
        samples = [timed(**kwargs) for _ in range(runs)]
        return min(t for t, _ in samples), samples[-1][1]

    _explore(program, detect_io=False)  # warm up
    # One execution: the marginal cost of the exhaustive search's executions
    # (every execution but the first), free of the per-call fixed costs.
    exhaustive = dict(stop_on_first=False, preemption_bound=None, reproduce_on_failure=0)
    t_one, one = fastest(21, max_executions=1, **exhaustive)
    t_full, full = fastest(21, **exhaustive)
    per_execution = (t_full - t_one) / (full.num_explored - one.num_explored)
    # One replay: what `replays` more replays add to the first-failure search.
    t_bare, bare = fastest(21, reproduce_on_failure=0)
    t_replayed, replayed = fastest(5, reproduce_on_failure=replays)
    assert replayed.reproduction_successes == replays, replayed.explanation
    assert bare.num_explored == replayed.num_explored
    return {
        "execution_ms": per_execution * 1e3,
        "replay_ms": (t_replayed - t_bare) / replays * 1e3,
        "executions": full.num_explored,
    }


def sample_state(locks: int, kind: str, readers: int) -> dict[str, Any]:
    from frontrun import explore_dpor

    def run() -> Any:
        return explore_dpor(
            lambda: Shared(locks, kind),
            [writer] + [reader] * readers,
            lambda s: True,
            preemption_bound=None,
            detect_io=False,
        )

    run()  # warm up
    best = best_cpu = float("inf")
    for _ in range(3):  # the least disturbed of three
        start = _clocks()
        result = run()
        end = _clocks()
        assert result.property_holds and result.exhausted, result.explanation
        best, best_cpu = min(best, end[0] - start[0]), min(best_cpu, end[1] - start[1])
    n = result.num_explored
    return {"executions": n, "per_execution_ms": best / n * 1e3, "per_execution_cpu_ms": best_cpu / n * 1e3}


# --- the driver ---------------------------------------------------------------


#: The environment of the samples: the package's bytecode cached (in
#: .bench/pycache), as it is once installed; set by main().
SAMPLE_ENV: dict[str, str] = {}


def fresh(*args: str, compiled: bool = True) -> dict[str, Any]:
    import json
    import subprocess

    env = dict(SAMPLE_ENV)
    if not compiled:
        # Every import compiles the package's source (a read-only tree, or
        # PYTHONDONTWRITEBYTECODE=1 with no cache written before).
        env.pop("PYTHONPYCACHEPREFIX", None)
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    cmd = [sys.executable, os.path.abspath(__file__), "--sample", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd="/tmp", timeout=600, env=env)
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        tail = (out.stderr.strip().splitlines() or ["no output"])[-1]
        raise SystemExit(f"overhead.py {' '.join(args)}: exit status {out.returncode}: {tail}")
    return json.loads(lines[-1])


#: The bounds of the figures (issue: fixed cost and replays), checked in the
#: output: import under 30 ms, the first exploration under 20 ms more than
#: the second, a replay within 1.5 times one execution.
IMPORT_BOUND_MS = 30.0
FIRST_EXTRA_BOUND_MS = 20.0
REPLAY_BOUND = 1.5


def verdict(value: float, bound: float) -> str:
    return f"within the bound of {bound:g}" if value <= bound else f"OVER the bound of {bound:g}"


def medians(samples: list[dict[str, Any]]) -> dict[str, Any]:
    import statistics

    return {k: statistics.median(s[k] for s in samples) for k in samples[0]}


def main() -> None:
    import json
    from pathlib import Path

    out_json = Path(sys.argv[1])
    wanted = sys.argv[2:] or ["import", "first", "replay", "state"]
    reps = int(os.environ.get("REPS", "9"))
    SAMPLE_ENV.update(os.environ)
    SAMPLE_ENV.pop("PYTHONDONTWRITEBYTECODE", None)
    SAMPLE_ENV["PYTHONPYCACHEPREFIX"] = str(out_json.parent / "pycache")
    fresh("import")  # writes the bytecode cache
    results: dict[str, Any] = {}
    if "import" in wanted:
        m = medians([fresh("import") for _ in range(reps)])
        source = medians([fresh("import", compiled=False) for _ in range(reps)])
        m["from_source_ms"] = source["import_ms"]
        m["from_source_cpu_ms"] = source["import_cpu_ms"]
        results["import"] = m
        print(
            f"import frontrun + explore_dpor: {m['import_ms']:.1f} ms (CPU {m['import_cpu_ms']:.1f} ms); "
            f"compiling the package's source on every import (PYTHONDONTWRITEBYTECODE=1, no cache): "
            f"{m['from_source_ms']:.1f} ms (CPU {m['from_source_cpu_ms']:.1f} ms); medians of {reps} processes; "
            f"{verdict(m['import_ms'], IMPORT_BOUND_MS)} ms",
            flush=True,
        )
    if "first" in wanted:
        m = medians([fresh("first") for _ in range(reps)])
        m["first_extra_ms"] = m["first_ms"] - m["second_ms"]
        m["first_extra_cpu_ms"] = m["first_cpu_ms"] - m["second_cpu_ms"]
        results["first"] = m
        print(
            f"counter(2), default arguments: import {m['import_ms']:.1f} ms, "
            f"first explore_dpor {m['first_ms']:.1f} ms, second {m['second_ms']:.1f} ms: "
            f"the first costs {m['first_extra_ms']:.1f} ms more (CPU: {m['first_extra_cpu_ms']:.1f} ms; "
            f"import + first - second: {m['import_ms'] + m['first_extra_ms']:.1f} ms); "
            f"{verdict(m['first_extra_ms'], FIRST_EXTRA_BOUND_MS)} ms",
            flush=True,
        )
    if "replay" in wanted:
        replays = int(os.environ.get("REPLAYS", "50"))
        results["replay"] = {}
        for program in REPLAYED:
            samples = [fresh("replay", program, str(replays)) for _ in range(reps)]
            if "unavailable" in samples[0]:
                results["replay"][program] = samples[0]
                print(f"{program}: not measured ({samples[0]['unavailable']})", flush=True)
                continue
            m = medians(samples)
            m["ratio"] = m["replay_ms"] / m["execution_ms"]
            results["replay"][program] = m
            print(
                f"{program}: one replay {m['replay_ms']:.3f} ms, one execution {m['execution_ms']:.3f} ms "
                f"(x{m['ratio']:.2f}, {verdict(m['ratio'], REPLAY_BOUND)}; {replays} replays per sample)",
                flush=True,
            )
    if "state" in wanted:
        readers = int(os.environ.get("READERS", "8"))
        points = []
        for kind in ("coop", "real"):
            for locks in (0, 128, 512):
                m = medians([fresh("state", str(locks), kind, str(readers)) for _ in range(max(reps // 3, 1))])
                m.update(locks=locks, kind=kind, readers=readers)
                points.append(m)
                print(
                    f"readers({readers}) with {locks} unused {kind} locks: {m['per_execution_ms']:.3f} ms "
                    f"per execution (CPU {m['per_execution_cpu_ms']:.3f} ms; {m['executions']} executions)",
                    flush=True,
                )
        results["state"] = points
    meta = {"started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "python": sys.version.split()[0]}
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps({"meta": meta, **results}, indent=1) + "\n")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--sample"]:
        kind, args = sys.argv[2], sys.argv[3:]
        if kind == "import":
            record = sample_import()
        elif kind == "first":
            record = sample_first()
        elif kind == "replay":
            record = sample_replay(args[0], int(args[1]))
        else:
            record = sample_state(int(args[0]), args[1], int(args[2]))
        import json

        print(json.dumps(record))
    else:
        main()
