"""The reranker-wide in-flight limit: first come first served, shared by threads and tasks, no slot leaked when a
waiter is cancelled."""

from __future__ import annotations

import asyncio
import threading

from rerank_core.http.inflight import InFlightLimit


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


async def test_a_slot_released_on_the_waiters_own_loop_is_granted_without_a_cross_thread_wake_up() -> None:
    # A grant on the same loop needs no self-pipe write: the waiter's future is resolved at once.
    limit = InFlightLimit(1)
    loop = asyncio.get_running_loop()
    cross_thread: list[object] = []
    original = loop.call_soon_threadsafe

    def counting(callback: object, *args: object, **kwargs: object) -> object:
        cross_thread.append(callback)
        return original(callback, *args, **kwargs)  # type: ignore[arg-type]

    loop.call_soon_threadsafe = counting  # type: ignore[method-assign,assignment]
    try:
        async with limit.ahold():
            waiter = asyncio.ensure_future(_take(limit))
            await asyncio.sleep(0)  # let it queue
        assert await waiter == 0
    finally:
        del loop.call_soon_threadsafe
    assert cross_thread == []
    assert limit.in_use == 0


def test_a_slot_released_by_a_thread_still_reaches_a_task_waiting_on_its_loop() -> None:
    limit = InFlightLimit(1)
    holding = threading.Event()
    release = threading.Event()

    def holder() -> None:
        with limit.hold():
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    holding.wait(10)

    async def wait_for_slot() -> int:
        task = asyncio.ensure_future(_take(limit))
        while not limit._waiters:  # noqa: ASYNC110 - no "queued" hook; the test's timeout bounds the poll
            await asyncio.sleep(0.001)
        release.set()  # the thread releases from outside the loop: the grant must cross threads
        return await task

    assert asyncio.run(wait_for_slot()) == 0
    thread.join(10)
    assert limit.in_use == 0
