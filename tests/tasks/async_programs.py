"""Async programs explored by the tests of this directory (in a file of
their own: code from exec or -c is not traced)."""

from __future__ import annotations

import asyncio


class Counter:
    def __init__(self) -> None:
        self.value = 0
        self.lock = asyncio.Lock()


async def increment(c: Counter) -> None:
    v = c.value
    await asyncio.sleep(0)
    c.value = v + 1


async def increment_locked(c: Counter) -> None:
    async with c.lock:
        v = c.value
        await asyncio.sleep(0)
        c.value = v + 1


async def increment_without_await(c: Counter) -> None:
    v = c.value
    c.value = v + 1


class Registry:
    def __init__(self) -> None:
        self.users: dict[str, int] = {}
        self.created = 0


async def register(r: Registry) -> None:
    if "alice" not in r.users:
        await asyncio.sleep(0)  # e.g. a round trip to a database
        r.users["alice"] = 1
        r.created += 1


class Pipeline:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[int | None] = asyncio.Queue()
        self.produced = 0
        self.consumed: list[int] = []
        self.done = False


async def producer(p: Pipeline) -> None:
    for i in range(2):
        await p.queue.put(i)
        p.produced += 1
        await asyncio.sleep(0)
    p.done = True


async def consumer(p: Pipeline) -> None:
    # Wrong termination: "the producer is done" is not "the queue is empty".
    while not p.done:
        item = await p.queue.get()
        p.consumed.append(item)


async def consumer_with_sentinel(p: Pipeline) -> None:
    while True:
        item = await p.queue.get()
        if item is None:
            return
        p.consumed.append(item)


async def producer_with_sentinel(p: Pipeline) -> None:
    for i in range(2):
        await p.queue.put(i)
        p.produced += 1
        await asyncio.sleep(0)
    await p.queue.put(None)


class Accounts:
    def __init__(self) -> None:
        self.a = asyncio.Lock()
        self.b = asyncio.Lock()
        self.moves = 0


async def a_then_b(s: Accounts) -> None:
    async with s.a:
        await asyncio.sleep(0)
        async with s.b:
            s.moves += 1


async def b_then_a(s: Accounts) -> None:
    async with s.b:
        await asyncio.sleep(0)
        async with s.a:
            s.moves += 1


class Cells:
    def __init__(self, n: int) -> None:
        self.cells = [0] * n


def own_cell(i: int):
    async def bump(c: Cells) -> None:
        v = c.cells[i]
        await asyncio.sleep(0)
        c.cells[i] = v + 1

    bump.__qualname__ = f"bump_cell_{i}"
    return bump


class Slow:
    def __init__(self) -> None:
        self.log: list[str] = []
        self.event = asyncio.Event()


async def sleeps_long(s: Slow) -> None:
    await asyncio.sleep(3600)
    s.log.append("slept")


async def waits_with_timeout(s: Slow) -> None:
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    try:
        await asyncio.wait_for(fut, timeout=10)
    except asyncio.TimeoutError:
        s.log.append("timed out")


def blocking_read(c: Counter) -> int:
    return c.value


async def reads_in_a_thread(c: Counter) -> None:
    v = await asyncio.to_thread(blocking_read, c)
    c.value = v + 1


async def spawns_a_task(c: Counter) -> None:
    await asyncio.create_task(increment(c))


async def spawns_a_locked_task(c: Counter) -> None:
    await asyncio.create_task(increment_locked(c))


async def gathers_two_increments(c: Counter) -> None:
    await asyncio.gather(increment(c), increment(c))


async def gathers_two_locked_increments(c: Counter) -> None:
    await asyncio.gather(increment_locked(c), increment_locked(c))


async def gathers_too_many(c: Counter) -> None:
    import frontrun._async

    await asyncio.gather(*(increment_without_await(c) for _ in range(frontrun._async.SPAWN_SLOTS + 1)))


async def waits_for_a_timeout(c: Counter) -> None:
    # Before 3.12, wait_for runs the coroutine in a task of its own.
    await asyncio.wait_for(increment(c), timeout=5)


class Guarded:
    def __init__(self) -> None:
        self.value = 0
        self.semaphore = asyncio.Semaphore(1)
        self.ready = asyncio.Event()
        self.condition = asyncio.Condition()
        self.items: list[int] = []
        self.seen: list[int] = []


async def increment_under_semaphore(g: Guarded) -> None:
    async with g.semaphore:
        v = g.value
        await asyncio.sleep(0)
        g.value = v + 1


async def publish(g: Guarded) -> None:
    g.value = 42
    g.ready.set()


async def read_when_ready(g: Guarded) -> None:
    await g.ready.wait()
    g.seen.append(g.value)


async def read_without_waiting(g: Guarded) -> None:
    await asyncio.sleep(0)
    g.seen.append(g.value)


async def wait_forever(g: Guarded) -> None:
    await g.ready.wait()


async def put_and_notify(g: Guarded) -> None:
    async with g.condition:
        g.items.append(1)
        g.condition.notify()


async def wait_for_item(g: Guarded) -> None:
    async with g.condition:
        await g.condition.wait_for(lambda: bool(g.items))
        g.seen.append(g.items.pop())


def _boom(fut: asyncio.Future[None]) -> None:
    raise ValueError("boom in a done callback")


async def callback_raises(c: Counter) -> None:
    fut = asyncio.get_running_loop().create_future()
    fut.add_done_callback(_boom)
    fut.set_result(None)
    await asyncio.sleep(0)
    c.value += 1


class Rendezvous:
    def __init__(self) -> None:
        self.barrier = asyncio.Barrier(2) if hasattr(asyncio, "Barrier") else None
        self.before: list[str] = []
        self.after: list[list[str]] = []


def meet(name: str):
    async def arrive(r: Rendezvous) -> None:
        r.before.append(name)
        await r.barrier.wait()
        r.after.append(sorted(r.before))

    arrive.__qualname__ = f"arrive_{name}"
    return arrive


async def fails(c: Counter) -> None:
    raise ValueError("boom")


async def fires_and_forgets_a_failing_task(c: Counter) -> None:
    asyncio.create_task(fails(c))  # noqa: RUF006 (forgotten on purpose)
    await asyncio.sleep(0)


async def retrieves_a_failure(c: Counter) -> None:
    try:
        await asyncio.create_task(fails(c))
    except ValueError:
        c.value = 1


async def waits_on_the_lock_forever(c: Counter) -> None:
    await c.lock.acquire()
    await c.lock.acquire()


async def leaves_a_waiting_task(c: Counter) -> None:
    asyncio.create_task(waits_on_the_lock_forever(c))  # noqa: RUF006 (left waiting on purpose)
    await asyncio.sleep(0)
    c.value = 1


async def awaits_a_task_that_waits_forever(c: Counter) -> None:
    await asyncio.create_task(waits_on_the_lock_forever(c))
