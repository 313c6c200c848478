"""Explanations of failing interleavings, checked on fixed schedules (replay)
so each kind of race is produced on purpose."""

from __future__ import annotations

from frontrun import replay


class Counter:
    def __init__(self) -> None:
        self.value = 0
        self.table: dict[str, int] = {}
        self.log: list[int] = []


def incr(c: Counter) -> None:
    tmp = c.value
    c.value = tmp + 1


def add_once(c: Counter) -> None:
    if "k" not in c.table:
        c.log.append(1)
        c.table["k"] = 1


def withdraw_if_covered(c: Counter) -> None:
    if c.value >= 80:
        c.value -= 80


def set_one(c: Counter) -> None:
    c.value = 1


def set_two(c: Counter) -> None:
    c.value = 2


def test_lost_update() -> None:
    rep = replay([0, 1, 1, 0], Counter, [incr, incr], lambda c: c.value == 2)
    assert rep.invariant_holds is False
    text = rep.explanation or ""
    assert "lost update on Counter.value" in text
    assert "[read Counter.value]" in text and "[write Counter.value]" in text
    lines = [ln for ln in text.splitlines() if ln.startswith("  thread")]
    assert [ln.split("|")[0].strip() for ln in lines] == ["thread 0", "thread 1", "thread 1", "thread 0"]


def test_check_then_act() -> None:
    # thread 0 checks membership, thread 1 runs through, thread 0 acts
    steps_per_thread = 6
    schedule = [0, 0] + [1] * steps_per_thread + [0] * (steps_per_thread - 2)
    rep = replay(schedule, Counter, [add_once, add_once], lambda c: len(c.log) == 1)
    assert rep.invariant_holds is False, rep.schedule
    assert "check-then-act on dict['k']" in (rep.explanation or "")


def test_a_check_followed_by_a_fresh_read_before_the_write_is_check_then_act_not_lost_update() -> None:
    # Each thread: read (the check), read (the -=), write. Thread 1 checks
    # while 100 is still there, thread 0 withdraws, then thread 1 re-reads the
    # new balance before writing: its write is not based on a stale value.
    def setup() -> Counter:
        c = Counter()
        c.value = 100
        return c

    rep = replay([0, 0, 1, 0, 1, 1], setup, [withdraw_if_covered, withdraw_if_covered], lambda c: c.value >= 0)
    assert rep.invariant_holds is False, rep.schedule
    text = rep.explanation or ""
    assert "check-then-act on Counter.value" in text
    assert "lost update" not in text


def test_write_write() -> None:
    rep = replay([1, 0], Counter, [set_two, set_one], lambda c: c.value == 1)
    assert rep.invariant_holds is False
    assert "write-write on Counter.value" in (rep.explanation or "")


def test_read_write() -> None:
    def check(c: Counter) -> None:
        c.log = [c.value]

    rep = replay([1, 0, 0], Counter, [check, set_one], lambda c: c.log == [0])
    assert rep.invariant_holds is False
    assert "read-write on Counter.value" in (rep.explanation or "")
