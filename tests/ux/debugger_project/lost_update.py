"""A lost update whose first worker stops in pdb in the first execution."""

import frontrun

stopped = []


class Counter:
    value = 0


def stops_first(c):
    if not stopped:
        stopped.append(True)
        breakpoint()
    current = c.value
    c.value = current + 1


def increments(c):
    current = c.value
    c.value = current + 1


r = frontrun.explore_dpor(
    Counter,
    [stops_first, increments],
    lambda c: c.value == 2,
    timeout_per_run=1.0,
    deadlock_timeout=0.5,
    detect_io=False,
)
print("VERDICT", r.verdict, r.num_explored, r.inconclusive)
