"""The reranker-wide in-flight limit: first come first served, shared by threads and tasks, no slot leaked when a
waiter is cancelled."""

from __future__ import annotations

import asyncio
import threading

from rerank_core._inflight import InFlightLimit


async def test_a_cancelled_waiter_leaks_no_slot() -> None:
    limit = InFlightLimit(1)
    held = asyncio.Event()
    release = asyncio.Event()

    async def holder() -> None:
        async with limit.ahold():
            held.set()
            await release.wait()

    first = asyncio.ensure_future(holder())
    await held.wait()
    waiters = [asyncio.ensure_future(_take(limit)) for _ in range(5)]
    await asyncio.sleep(0)  # let them queue
    for task in waiters[:4]:
        task.cancel()
    release.set()
    await first
    assert await waiters[4] == 0  # the one left gets the slot, and gives it back
    assert limit.in_use == 0


async def test_a_waiter_cancelled_as_its_slot_arrives_passes_it_on() -> None:
    limit = InFlightLimit(1)
    async with limit.ahold():
        waiter = asyncio.ensure_future(_take(limit))
        await asyncio.sleep(0)
    waiter.cancel()  # the slot was handed to it on release; cancelled before it could run
    await asyncio.gather(waiter, return_exceptions=True)
    assert limit.in_use == 0


async def test_threads_and_tasks_share_one_limit_in_order() -> None:
    limit = InFlightLimit(1)
    order: list[str] = []

    def thread_user() -> None:
        with limit.hold():
            order.append("thread")

    async with limit.ahold():
        thread = threading.Thread(target=thread_user)
        thread.start()
        # The limiter has no "someone queued" hook: poll that condition (the test's timeout bounds it).
        while not limit._waiters:  # noqa: ASYNC110
            await asyncio.sleep(0.001)
        task = asyncio.ensure_future(_take(limit, order))
        await asyncio.sleep(0)
    await task
    await asyncio.to_thread(thread.join, 10)
    assert order == ["thread", "task"]
    assert limit.in_use == 0


async def _take(limit: InFlightLimit, order: list[str] | None = None) -> int:
    async with limit.ahold() as slot:
        if order is not None:
            order.append("task")
        return slot
