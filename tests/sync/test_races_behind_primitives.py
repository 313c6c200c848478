"""Each primitive orders what it protects (the safe twin holds over every
interleaving) and leaves unprotected code racy (the racy twin fails)."""

from __future__ import annotations

import queue
import threading

from _sync_helpers import assert_found, assert_holds, explore_all


class Counter:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.value = 0


def locked_increment(c: Counter) -> None:
    with c.lock:
        current = c.value
        c.value = current + 1


def unlocked_increment(c: Counter) -> None:
    current = c.value
    c.value = current + 1


def test_lock_protected_counter_never_loses_an_update() -> None:
    result = explore_all(Counter, [locked_increment, locked_increment], lambda c: c.value == 2)
    assert_holds(result)
    # Two orders of the critical sections, nothing else.
    assert result.num_explored == 2


def test_counter_without_the_lock_loses_an_update() -> None:
    result = explore_all(Counter, [unlocked_increment, locked_increment], lambda c: c.value == 2)
    assert_found(result)
    assert "lost update on Counter.value" in result.explanation


def test_rlock_protected_counter_with_nested_acquire_holds() -> None:
    class State:
        def __init__(self) -> None:
            self.lock = threading.RLock()
            self.value = 0

    def increment(s: State) -> None:
        with s.lock:
            with s.lock:
                current = s.value
            s.value = current + 1

    result = explore_all(State, [increment, increment], lambda s: s.value == 2)
    assert_holds(result)
    assert result.num_explored == 2


class Handoff:
    def __init__(self) -> None:
        self.ready = threading.Event()
        self.data: int | None = None
        self.received: int | None = None


def produce(h: Handoff) -> None:
    h.data = 42
    h.ready.set()


def consume(h: Handoff) -> None:
    h.ready.wait()
    h.received = h.data


def consume_without_waiting(h: Handoff) -> None:
    h.received = h.data


def test_event_handoff_delivers_the_data() -> None:
    assert_holds(explore_all(Handoff, [produce, consume], lambda h: h.received == 42))


def test_reading_before_the_event_is_racy() -> None:
    assert_found(explore_all(Handoff, [produce, consume_without_waiting], lambda h: h.received == 42))


class Pipeline:
    def __init__(self) -> None:
        self.q: queue.Queue[int] = queue.Queue(maxsize=1)
        self.out: list[int] = []


def producer(p: Pipeline) -> None:
    p.q.put(1)
    p.q.put(2)


def consumer(p: Pipeline) -> None:
    p.out.append(p.q.get())
    p.out.append(p.q.get())


def impatient_consumer(p: Pipeline) -> None:
    for _ in range(2):
        try:
            p.out.append(p.q.get_nowait())
        except queue.Empty:
            pass


def test_queue_producer_consumer_delivers_in_order() -> None:
    result = explore_all(Pipeline, [producer, consumer], lambda p: p.out == [1, 2])
    assert_holds(result)
    assert result.num_explored > 1


def test_consumer_that_does_not_wait_misses_items() -> None:
    assert_found(explore_all(Pipeline, [producer, impatient_consumer], lambda p: p.out == [1, 2]))


class Flag:
    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.ready = False
        self.seen = False


def wait_for_flag(f: Flag) -> None:
    with f.cond:
        while not f.ready:
            f.cond.wait()
        f.seen = True


def wait_once(f: Flag) -> None:
    # Lost wakeup: if the notify came first, this waits forever.
    with f.cond:
        f.cond.wait()
        f.seen = True


def raise_flag(f: Flag) -> None:
    with f.cond:
        f.ready = True
        f.cond.notify()


def test_condition_wait_in_a_loop_sees_the_flag() -> None:
    assert_holds(explore_all(Flag, [wait_for_flag, raise_flag], lambda f: f.seen))


def test_condition_wait_without_a_predicate_loses_the_wakeup() -> None:
    result = explore_all(Flag, [wait_once, raise_flag], lambda f: f.seen)
    assert_found(result)
    assert result.deadlock == [0]
    assert "thread 0 waits on Condition state.cond" in result.explanation


class Phases:
    def __init__(self) -> None:
        self.barrier = threading.Barrier(2)
        self.written = [0, 0]
        self.seen: list[int | None] = [None, None]


def phased(i: int, use_barrier: bool):
    def run(p: Phases) -> None:
        p.written[i] = 1
        if use_barrier:
            p.barrier.wait()
        p.seen[i] = p.written[1 - i]

    return run


def test_barrier_separates_the_phases() -> None:
    assert_holds(explore_all(Phases, [phased(0, True), phased(1, True)], lambda p: p.seen == [1, 1]))


def test_without_the_barrier_a_thread_reads_too_early() -> None:
    assert_found(explore_all(Phases, [phased(0, False), phased(1, False)], lambda p: p.seen == [1, 1]))


class Work:
    """Whoever gets the lock drains the pending work; the others leave it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pending = 0
        self.done = 0


def submit_and_try_to_drain(w: Work) -> None:
    w.pending += 1
    if not w.lock.acquire(blocking=False):
        return
    try:
        while w.pending:
            w.pending -= 1
            w.done += 1
    finally:
        w.lock.release()


def submit_and_drain(w: Work) -> None:
    with w.lock:
        w.pending += 1
        while w.pending:
            w.pending -= 1
            w.done += 1


def test_trylock_pattern_loses_a_wakeup() -> None:
    # Thread 0 sees no more work, thread 1 adds some and fails the
    # try-acquire before thread 0 releases: nobody does thread 1's work.
    result = explore_all(Work, [submit_and_try_to_drain, submit_and_try_to_drain], lambda w: w.done == 2)
    assert_found(result)
    assert "try-acquire failed Lock state.lock" in result.explanation


def test_blocking_drain_does_all_the_work() -> None:
    assert_holds(explore_all(Work, [submit_and_drain, submit_and_drain], lambda w: w.done == 2))


class Slots:
    def __init__(self) -> None:
        self.sem = threading.BoundedSemaphore(1)
        self.inside = 0
        self.max_inside = 0


def use_slot(s: Slots) -> None:
    with s.sem:
        s.inside += 1
        s.max_inside = max(s.max_inside, s.inside)
        s.inside -= 1


def test_semaphore_of_one_admits_one_thread_at_a_time() -> None:
    assert_holds(explore_all(Slots, [use_slot, use_slot, use_slot], lambda s: s.max_inside == 1))


def test_semaphore_of_two_admits_two() -> None:
    def setup() -> Slots:
        s = Slots()
        s.sem = threading.BoundedSemaphore(2)
        return s

    assert_found(explore_all(setup, [use_slot, use_slot], lambda s: s.max_inside == 1))


def test_condition_on_an_rlock_held_twice_restores_both_levels() -> None:
    class State:
        def __init__(self) -> None:
            self.cond = threading.Condition(threading.RLock())
            self.flag = False
            self.ok = False

    def waiter(s: State) -> None:
        with s.cond:
            with s.cond:
                s.cond.wait_for(lambda: s.flag)
            # Still held once here: notify needs the lock.
            s.cond.notify_all()
            s.ok = True

    def setter(s: State) -> None:
        with s.cond:
            s.flag = True
            s.cond.notify_all()

    result = explore_all(State, [waiter, setter], lambda s: s.ok)
    assert_holds(result)
    assert result.errors == {}


def test_queue_join_waits_for_every_task_done() -> None:
    class Jobs:
        def __init__(self) -> None:
            self.q: queue.Queue[int] = queue.Queue()
            self.processed: list[int] = []
            self.seen_at_join: list[int] | None = None

    def submitter(j: Jobs) -> None:
        j.q.put(1)
        j.q.put(2)
        j.q.join()
        j.seen_at_join = list(j.processed)

    def worker(j: Jobs) -> None:
        for _ in range(2):
            item = j.q.get()
            j.processed.append(item)
            j.q.task_done()

    result = explore_all(Jobs, [submitter, worker], lambda j: j.seen_at_join == [1, 2])
    assert_holds(result)


def test_lifo_priority_and_simple_queues_hand_items_over() -> None:
    class Queues:
        def __init__(self) -> None:
            self.lifo: queue.LifoQueue[int] = queue.LifoQueue()
            self.prio: queue.PriorityQueue[int] = queue.PriorityQueue()
            self.simple: queue.SimpleQueue[int] = queue.SimpleQueue()
            self.got: list[int] = []

    def fill(q: Queues) -> None:
        for x in (2, 1):
            q.lifo.put(x)
            q.prio.put(x)
        q.simple.put(7)

    def take(q: Queues) -> None:
        q.got.append(q.simple.get())
        q.got.append(q.lifo.get())
        q.got.append(q.prio.get())

    # take() waits on the SimpleQueue until fill() is done, so the order
    # within the other two queues is fixed.
    result = explore_all(Queues, [fill, take], lambda q: q.got == [7, 1, 1])
    assert_holds(result)


def test_polling_an_event_is_a_read_that_commutes_with_other_polls() -> None:
    class Stop:
        def __init__(self) -> None:
            self.stop = threading.Event()
            self.polls = 0

    def poll(s: Stop) -> None:
        for _ in range(3):
            if s.stop.is_set():
                return

    # Nothing sets the event: every order of the six checks is one trace.
    result = explore_all(Stop, [poll, poll])
    assert_holds(result)
    assert result.num_explored == 1

    def stopper(s: Stop) -> None:
        s.stop.set()

    seen: set[int] = set()

    def count_checks(s: Stop) -> bool:
        seen.add(s.polls)
        return True

    def counted_poll(s: Stop) -> None:
        while not s.stop.is_set():
            s.polls += 1
            if s.polls == 2:
                return

    # The stop may land before the first check, between the checks, or not
    # at all before the poller gives up.
    assert_holds(explore_all(Stop, [counted_poll, stopper], count_checks))
    assert seen == {0, 1, 2}
