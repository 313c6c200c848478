"""Race hunts run by ``scripts/demo``: each explores a small concurrent
program with frontrun and prints what it found. Nothing here is canned: every
line of output comes from an exploration run now."""

from __future__ import annotations

import sys
import time

from frontrun import explore_dpor


class Account:
    def __init__(self) -> None:
        self.balance = 100


def withdraw(account: Account) -> None:
    if account.balance >= 80:
        account.balance -= 80


class Counter:
    def __init__(self) -> None:
        self.value = 0

    def increment(self) -> None:
        current = self.value
        self.value = current + 1


class Registry:
    def __init__(self) -> None:
        self.users: dict[str, int] = {}
        self.next_id = 0

    def register(self, name: str) -> None:
        if name not in self.users:
            self.next_id += 1
            self.users[name] = self.next_id


HUNTS = [
    (
        "lost update: two threads increment a counter",
        dict(
            setup=Counter,
            threads=[lambda c: c.increment(), lambda c: c.increment()],
            invariant=lambda c: c.value == 2,
        ),
    ),
    (
        "check-then-act: two withdrawals of 80 from a balance of 100",
        dict(
            setup=Account,
            threads=[withdraw, withdraw],
            invariant=lambda a: a.balance >= 0,
        ),
    ),
    (
        "check-then-insert: two threads register the same user",
        dict(
            setup=Registry,
            threads=[lambda r: r.register("ada"), lambda r: r.register("ada")],
            invariant=lambda r: r.next_id == len(r.users),
        ),
    ),
    (
        "no race: each thread updates its own counter",
        dict(
            setup=lambda: [Counter(), Counter(), Counter()],
            threads=[lambda cs, i=i: cs[i].increment() for i in range(3)],
            invariant=lambda cs: all(c.value == 1 for c in cs),
            preemption_bound=None,
            stop_on_first=False,
        ),
    ),
]


def main() -> int:
    found = 0
    for title, kwargs in HUNTS:
        print(f"=== {title}")
        started = time.perf_counter()
        result = explore_dpor(detect_io=False, **kwargs)
        elapsed = time.perf_counter() - started
        verdict = "invariant holds" if result.property_holds else "RACE FOUND"
        print(f"{verdict} after {result.num_explored} execution(s) in {elapsed:.3f}s")
        if not result.property_holds:
            found += 1
            print(result.explanation)
        print()
    print(f"{found} of {len(HUNTS)} hunts found a race.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
