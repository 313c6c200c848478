"""Replay tokens and ``@frontrun.reproduce``: a schedule survives the trip
through a failure message, a damaged token is refused, and the decorator
turns an exploration into exactly one replayed execution."""

from __future__ import annotations

import random
import re

import frontrun
import pytest
from frontrun import _stats, _token, explore_dpor, replay, reproduce


class Counter:
    def __init__(self) -> None:
        self.value = 0

    def increment(self) -> None:
        current = self.value
        self.value = current + 1


THREADS = [Counter.increment, Counter.increment]


def lost_update(c: Counter) -> bool:
    return c.value == 2


def explore(**kwargs):
    return explore_dpor(Counter, THREADS, lost_update, detect_io=False, reproduce_on_failure=0, **kwargs)


def printed_token(explanation: str) -> str:
    return re.search(r'@frontrun\.reproduce\("(fr1\.[a-z2-7]+)"\)', explanation).group(1)


def test_tokens_round_trip_for_any_schedule() -> None:
    rng = random.Random(20261128)
    for _ in range(500):
        threads = rng.randint(1, 40)
        schedule = [rng.randrange(threads) for _ in range(rng.randint(0, 300))]
        # Real schedules come in runs; include some long ones.
        if schedule and rng.random() < 0.5:
            schedule[:0] = [schedule[0]] * rng.randint(1, 500)
        token = _token.encode(schedule, threads)
        assert re.fullmatch(r"fr1\.[a-z2-7]+", token)
        assert _token.decode(token) == (threads, schedule)
        assert _token.parse(token) == (threads, schedule)


def test_a_token_is_much_shorter_than_the_engine_text_for_long_schedules() -> None:
    schedule = ([0] * 40 + [1] * 40) * 10 + [2] * 7
    token = _token.encode(schedule, 3)
    text = frontrun._engine.format_schedule(schedule)
    assert len(token) * 20 < len(text)


def test_every_single_character_change_or_cut_is_refused() -> None:
    token = _token.encode([0, 0, 1, 1, 1, 0, 2, 2, 1, 0], 3)
    body = token[len(_token.PREFIX) :]
    for i in range(len(body)):
        for c in "abcdefghijklmnopqrstuvwxyz234567":
            if c == body[i]:
                continue
            damaged = _token.PREFIX + body[:i] + c + body[i + 1 :]
            with pytest.raises(ValueError):
                _token.decode(damaged)
    for n in range(len(body)):
        with pytest.raises(ValueError):
            _token.decode(_token.PREFIX + body[:n])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("fr1.!!!!", "not valid base32"),
        ("fr2.aiaagafambca", "starts with 'fr1.'"),
        ("fr1.aiaagafambcb", "checksum"),
    ],
)
def test_bad_tokens_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        _token.decode(text)


def test_encode_refuses_what_is_not_a_schedule() -> None:
    with pytest.raises(ValueError, match="not a thread index"):
        _token.encode([0, -1])
    with pytest.raises(ValueError, match="num_threads is 2"):
        _token.encode([0, 2], 2)


def test_the_engine_text_is_still_accepted() -> None:
    assert _token.parse("v1:0,1,1,0") == (None, [0, 1, 1, 0])


def test_the_printed_token_replays_and_knows_its_thread_count() -> None:
    result = explore()
    token = printed_token(result.explanation)
    assert _token.decode(token) == (2, result.counterexample)
    run = replay(token, Counter, THREADS, lost_update)
    assert run.invariant_holds is False and run.schedule == result.counterexample
    with pytest.raises(ValueError, match="recorded with 2 threads, but 3 were given"):
        replay(token, Counter, [*THREADS, Counter.increment], lost_update)


def test_reproduce_runs_the_recorded_interleaving_once_and_fails_the_same_way() -> None:
    found = explore()
    token = printed_token(found.explanation)

    @reproduce(token)
    def rerun():
        return explore()

    again = rerun()
    assert again.num_explored == 1
    assert again.counterexample == found.counterexample
    assert not again.property_holds
    steps = [ln for ln in found.explanation.splitlines() if ln.startswith("  thread ")]
    assert [ln for ln in again.explanation.splitlines() if ln.startswith("  thread ")] == steps
    with pytest.raises(AssertionError, match=re.escape("lost update on Counter.value")):
        again.assert_holds()
    # Outside the decorated function, explorations search again.
    assert explore(max_executions=1).num_explored == 1
    assert explore().num_explored == found.num_explored


def test_reproduce_of_a_harmless_interleaving_passes() -> None:
    @reproduce(_token.encode([0, 0, 1, 1], 2))
    def rerun():
        return explore()

    result = rerun()
    assert result.property_holds and result.num_explored == 1
    result.assert_holds()


def test_reproduce_refuses_a_damaged_token_when_decorating() -> None:
    with pytest.raises(ValueError, match="checksum"):
        reproduce("fr1.aiaagafambcb")
    with pytest.raises(TypeError, match="token string"):
        reproduce([0, 1])  # type: ignore[arg-type]


def test_reproduce_refuses_a_token_for_another_number_of_threads() -> None:
    @reproduce(_token.encode([0, 1, 2], 3))
    def rerun():
        return explore()

    with pytest.raises(ValueError, match="recorded with 3 threads, but this exploration has 2"):
        rerun()


def test_reproduce_says_when_the_code_no_longer_follows_the_schedule() -> None:
    # Thread 0 finishes after its two steps; the schedule wants a third.
    @reproduce(_token.encode([0, 0, 0, 0, 0, 0, 1, 1], 2))
    def rerun():
        return explore()

    with pytest.raises(RuntimeError, match="could not be followed"):
        rerun()


def test_reproduce_keeps_the_decorated_function_signature_for_pytest() -> None:
    import inspect

    def test_something(tmp_path, monkeypatch):
        pass

    wrapped = reproduce("v1:0,1")(test_something)
    assert list(inspect.signature(wrapped).parameters) == ["tmp_path", "monkeypatch"]
    assert wrapped.__name__ == "test_something"


def test_default_max_executions_applies_only_when_the_caller_gives_none() -> None:
    class Box:
        def __init__(self) -> None:
            self.a = 0

    def bump(box: Box) -> None:
        for _ in range(3):
            box.a += 1

    saved = _stats.DEFAULTS.max_executions
    _stats.DEFAULTS.max_executions = 3
    try:
        bounded = explore_dpor(Box, [bump, bump], lambda b: True, detect_io=False, preemption_bound=None)
        own = explore_dpor(Box, [bump, bump], lambda b: True, detect_io=False, max_executions=5)
    finally:
        _stats.DEFAULTS.max_executions = saved
    assert bounded.num_explored == 3 and not bounded.exhausted
    assert own.num_explored == 5


def test_each_exploration_adds_to_the_process_totals() -> None:
    before = (_stats.TOTALS.explorations, _stats.TOTALS.executions, _stats.TOTALS.races)
    found = explore()
    safe = explore_dpor(Counter, THREADS[:1], lambda c: c.value == 1, detect_io=False)
    after = (_stats.TOTALS.explorations, _stats.TOTALS.executions, _stats.TOTALS.races)
    assert after == (before[0] + 2, before[1] + found.num_explored + safe.num_explored, before[2] + 1)


def test_the_schedule_line_shows_runs_and_is_cut_in_the_middle_when_long() -> None:
    assert _token.schedule_text([0, 1, 1, 0]) == "Schedule (4 steps): 0 1x2 0"
    assert _token.schedule_text([0] * 18 + [1] * 23 + [0] * 5) == "Schedule (46 steps): 0x18 1x23 0x5"
    assert _token.schedule_text([2]) == "Schedule (1 step): 2"
    alternating = [0, 1] * 300
    assert _token.schedule_text(alternating) == (
        "Schedule (600 steps in 600 runs): 0 1 0 1 0 1 ... 588 more runs ... 0 1 0 1 0 1"
    )
    runs = ([0] * 12 + [1] * 130 + [2] * 7) * 40
    text = _token.schedule_text(runs)
    assert text.startswith("Schedule (5960 steps in 120 runs): 0x12 1x130 2x7 0x12 1x130 2x7 ... 108 more runs ... ")
    assert len(text) < 120


class Tally:
    def __init__(self) -> None:
        self.n = 0

    def add(self) -> None:
        for _ in range(150):
            current = self.n
            self.n = current + 1


def test_a_long_schedule_is_shortened_in_the_text_and_replays_whole_from_its_token() -> None:
    # Strict alternation: 600 steps in 600 runs, every increment lost.
    threads = [Tally.add, Tally.add]
    run = replay([0, 1] * 300, Tally, threads, lambda t: t.n == 300, detect_io=False)
    assert run.invariant_holds is False and run.schedule == [0, 1] * 300
    line = next(ln for ln in run.explanation.splitlines() if ln.startswith("Schedule ("))
    assert line == "Schedule (600 steps in 600 runs): 0 1 0 1 0 1 ... 588 more runs ... 0 1 0 1 0 1"
    token = printed_token(run.explanation)
    assert _token.decode(token) == (2, run.schedule)
    again = replay(token, Tally, threads, lambda t: t.n == 300, detect_io=False)
    assert again.invariant_holds is False and again.schedule == run.schedule and again.state.n == run.state.n

    @reproduce(token)
    def rerun():
        return explore_dpor(Tally, threads, lambda t: t.n == 300, detect_io=False, reproduce_on_failure=0)

    reproduced = rerun()
    assert reproduced.num_explored == 1 and reproduced.counterexample == run.schedule
    assert printed_token(reproduced.explanation) == token
