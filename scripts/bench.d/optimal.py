"""Optimal execution counts for the benchmark workloads, computed, not quoted.

An optimal DPOR explorer runs one execution per Mazurkiewicz trace: per
class of interleavings that differ only in the order of independent steps.
This module models each benchmark workload as a few threads of shared-memory
steps (read, write, lock acquire, lock release of named locations) and
counts the traces two ways:

* `count_traces`: a depth-first search over every interleaving, pruned with
  sleep sets (Godefroid, "Partial-Order Methods for the Verification of
  Concurrent Systems", LNCS 1032, 1996). Without the pruning the search
  would see every interleaving; with it, it reaches each maximal trace once,
  so the number of maximal executions it reaches is the trace count.
* `brute_force_traces`: every interleaving, grouped by the order it gives
  each pair of dependent steps. Exponential; used only to check the first
  method on small instances.

Two steps are dependent when the same thread runs them, or they touch the
same location and at least one of them is not a read (acquire and release
count as writes of the lock). A thread blocked on a held lock is not
enabled; a state where no thread is enabled but some are unfinished is a
deadlock and ends its execution (it counts as a trace of its own).

The models mirror the Python workloads in `workloads.py` at the granularity
the explorers see: attribute and per-index subscript accesses, and rows for
the database workloads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from math import factorial

# A step: (kind, location) with kind one of "r", "w", "acq", "rel".
Step = tuple[str, str]
# A thread is a pure function of (local state, shared memory): it returns
# the next step and a function applying it, or None when the thread is done.
Shared = dict[str, int]
Local = tuple[int, ...]
Transition = Callable[[Local, Shared], tuple[Local, Shared]]
Thread = Callable[[Local], "tuple[Step, Transition] | None"]


@dataclass(frozen=True)
class Model:
    threads: tuple[Thread, ...]
    initial: tuple[tuple[str, int], ...]
    # Each thread's first local state; (0,) (a program counter) if omitted.
    starts: tuple[Local, ...] | None = None

    def start_locals(self) -> tuple[Local, ...]:
        return self.starts if self.starts is not None else tuple((0,) for _ in self.threads)


def straight_line(steps: list[Step]) -> Thread:
    """A thread that runs fixed steps whose effect on memory is irrelevant
    to its control flow (it writes the value 1, reads into nothing)."""

    def thread(local: Local) -> tuple[Step, Transition] | None:
        pc = local[0]
        if pc == len(steps):
            return None
        kind, loc = steps[pc]

        def apply(local: Local, shared: Shared) -> tuple[Local, Shared]:
            shared = dict(shared)
            if kind == "w":
                shared[loc] = 1
            elif kind == "acq":
                shared[loc] = 1
            elif kind == "rel":
                shared[loc] = 0
            return (pc + 1,), shared

        return (kind, loc), apply

    return thread


def _enabled(step: Step, shared: Shared) -> bool:
    kind, loc = step
    return kind != "acq" or shared.get(loc, 0) == 0


def _dependent(a: Step, b: Step) -> bool:
    return a[1] == b[1] and not (a[0] == "r" and b[0] == "r")


def count_traces(model: Model) -> int:
    """Maximal Mazurkiewicz traces of the model (sleep-set search)."""

    def dfs(locals_: tuple[Local, ...], shared: Shared, sleep: frozenset[int]) -> int:
        nexts = [t(loc) for t, loc in zip(model.threads, locals_, strict=True)]
        enabled = [i for i, n in enumerate(nexts) if n is not None and _enabled(n[0], shared)]
        if not enabled:
            return 1  # every thread finished, or a deadlock
        asleep = set(sleep)
        total = 0
        for i in enabled:
            if i in asleep:
                continue
            step, apply = nexts[i]  # type: ignore[misc]
            # Threads asleep stay asleep past a step independent of theirs;
            # their next step only changes when they run.
            child_sleep = frozenset(j for j in asleep if not _dependent(nexts[j][0], step))  # type: ignore[index]
            new_local, new_shared = apply(locals_[i], shared)
            child_locals = (*locals_[:i], new_local, *locals_[i + 1 :])
            total += dfs(child_locals, new_shared, child_sleep)
            asleep.add(i)
        return total

    return dfs(model.start_locals(), dict(model.initial), frozenset())


def _interleavings(model: Model) -> Iterator[list[tuple[int, int, Step]]]:
    """Every maximal interleaving: (thread, step index, step) per step."""

    def walk(locals_: tuple[Local, ...], shared: Shared, counts: tuple[int, ...], prefix: list) -> Iterator:
        nexts = [t(loc) for t, loc in zip(model.threads, locals_, strict=True)]
        enabled = [i for i, n in enumerate(nexts) if n is not None and _enabled(n[0], shared)]
        if not enabled:
            yield list(prefix)
            return
        for i in enabled:
            step, apply = nexts[i]  # type: ignore[misc]
            new_local, new_shared = apply(locals_[i], shared)
            prefix.append((i, counts[i], step))
            yield from walk(
                (*locals_[:i], new_local, *locals_[i + 1 :]),
                new_shared,
                (*counts[:i], counts[i] + 1, *counts[i + 1 :]),
                prefix,
            )
            prefix.pop()

    yield from walk(model.start_locals(), dict(model.initial), (0,) * len(model.threads), [])


def brute_force_traces(model: Model) -> int:
    """Maximal traces by enumerating every interleaving (small models only)."""
    classes = set()
    for run in _interleavings(model):
        order = frozenset(
            (a, b) for x, a in enumerate(run) for b in run[x + 1 :] if a[0] == b[0] or _dependent(a[2], b[2])
        )
        classes.add(order)
    return len(classes)


# --- the workloads -----------------------------------------------------------


def counter(k: int) -> Model:
    """k threads, each `tmp = c.value; c.value = tmp + 1`."""
    return Model(tuple(straight_line([("r", "value"), ("w", "value")]) for _ in range(k)), ())


def readers(n: int) -> Model:
    """One thread writes `s.x`, n threads read it."""
    return Model((straight_line([("w", "x")]), *(straight_line([("r", "x")]) for _ in range(n))), ())


def lastzero(n: int) -> Model:
    """`a = [0] * (n + 1)`; thread 0 scans from a[n] down to the first zero;
    thread j (1..n) runs `a[j] = a[j - 1] + 1`."""

    def scanner(local: Local) -> tuple[Step, Transition] | None:
        i, done = local
        if done:
            return None

        def apply(local: Local, shared: Shared) -> tuple[Local, Shared]:
            return ((i, 1) if shared[f"a{i}"] == 0 else (i - 1, 0)), shared

        return ("r", f"a{i}"), apply

    def writer(j: int) -> Thread:
        def thread(local: Local) -> tuple[Step, Transition] | None:
            pc, _reg = local
            if pc == 0:
                return ("r", f"a{j - 1}"), lambda loc, sh: ((1, sh[f"a{j - 1}"]), sh)
            if pc == 1:
                return ("w", f"a{j}"), lambda loc, sh: ((2, 0), {**sh, f"a{j}": loc[1] + 1})
            return None

        return thread

    threads = (scanner, *(writer(j) for j in range(1, n + 1)))
    initial = tuple((f"a{i}", 0) for i in range(n + 1))
    # The scanner starts at index n, the writers at pc 0 with an empty register.
    return Model(threads, initial, ((n, 0),) + ((0, 0),) * n)


def independent(n: int, rounds: int) -> Model:
    """n threads, each incrementing its own object `rounds` times."""
    return Model(tuple(straight_line([("r", f"o{i}"), ("w", f"o{i}")] * rounds) for i in range(n)), ())


def locked_counter(k: int) -> Model:
    """k threads, each incrementing a counter under one lock."""
    body = [("acq", "lock"), ("r", "value"), ("w", "value"), ("rel", "lock")]
    return Model(tuple(straight_line(body) for _ in range(k)), ())


def abba() -> Model:
    """Two threads taking two locks in opposite orders."""
    t0 = [("acq", "A"), ("acq", "B"), ("rel", "B"), ("rel", "A")]
    t1 = [("acq", "B"), ("acq", "A"), ("rel", "A"), ("rel", "B")]
    return Model((straight_line(t0), straight_line(t1)), ())


def rows(k: int, same_row: bool) -> Model:
    """k database clients, each reading one row then writing it (autocommit
    SELECT then UPDATE): the same row for all, or one row each."""
    return Model(
        tuple(
            straight_line([("r", "row1" if same_row else f"row{i}"), ("w", "row1" if same_row else f"row{i}")])
            for i in range(k)
        ),
        (),
    )


def optimal(workload: str, n: int) -> tuple[int | None, str]:
    """The optimal execution count for a workload point and how it was obtained."""
    if workload == "counter":
        return count_traces(counter(n)), "sleep-set enumeration of the model"
    if workload == "sleepy_counter":
        # A sleep touches no shared location: the counter's traces.
        return count_traces(counter(n)), "sleep-set enumeration of the counter model (a sleep is no access)"
    if workload == "private_caches":
        # The caches are per thread: the only shared location is the total.
        return count_traces(counter(n)), "sleep-set enumeration of the counter model (the caches are per thread)"
    if workload == "sleepy_locked_counter":
        return count_traces(locked_counter(n)), "sleep-set enumeration of the locked_counter model (= N!)"
    if workload == "async_counter":
        # A task's read and its write are two steps, split by the await.
        return count_traces(counter(n)), "sleep-set enumeration of the counter model (the await splits the steps)"
    if workload == "async_gather_counter":
        # The gathered increments are the counter's tasks; the gathering
        # task's own steps touch only asyncio's bookkeeping of them.
        return count_traces(counter(n)), "sleep-set enumeration of the counter model (the gathered increments)"
    if workload == "async_locked_counter":
        return count_traces(locked_counter(n)), "sleep-set enumeration of the locked_counter model (= N!)"
    if workload == "readers":
        return count_traces(readers(n)), "sleep-set enumeration of the model (= 2^N)"
    if workload == "lastzero":
        return count_traces(lastzero(n)), "sleep-set enumeration of the model"
    if workload in ("independent", "independent_marginal"):
        # No location is shared, so every interleaving is one trace; the
        # enumeration is checked on small instances in tests/bench.
        return 1, "no shared location: one trace"
    if workload == "locked_counter":
        value = count_traces(locked_counter(n))
        assert value == factorial(n)
        return value, "sleep-set enumeration of the model (= N!)"
    if workload == "abba":
        return count_traces(abba()), "sleep-set enumeration of the model (2 orders + the deadlock)"
    if workload in ("pg_lost_update", "pg_tls_lost_update"):
        return count_traces(rows(n, True)), "sleep-set enumeration, one location per row"
    if workload in (
        "pg_different_rows",
        "pg_tls_different_rows",
        "pg_repeatable_read_rows",
        "pg_connect_in_worker_rows",
    ):
        return count_traces(rows(n, False)), "sleep-set enumeration, one location per row"
    return None, "unknown"


if __name__ == "__main__":
    for name, ns in [("counter", [2, 3, 4]), ("readers", range(2, 11)), ("lastzero", range(2, 9))]:
        print(name, [(n, optimal(name, n)[0]) for n in ns])
    print("locked_counter(3)", optimal("locked_counter", 3)[0], "abba", optimal("abba", 2)[0])
