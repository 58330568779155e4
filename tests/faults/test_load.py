"""Many concurrent calls on one reranker, over loopback: all succeed, none gets another's documents, and file
descriptors and connections come back to where they were.

Bounded in count (1,000 async calls, 200 threads) and in time (each phase has a generous deadline), never timed
for speed: speed is in benchmarks/load.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from rerank_core import HTTPReranker, RerankResponse, load_reranker
from rerank_core.base import Reranker
from tests.support.emulator import Fault, ProviderEmulator
from tests.support.fixtures import StartEmulator

KEY = "sk-load-test-0123456789"
ASYNC_CALLS = 1000
THREADS = 200


def open_descriptors() -> set[tuple[str, str]]:
    """Each open descriptor with what it points at, so a leaked socket is told apart from a reused number."""
    gc.collect()  # sockets of earlier tests that are only waiting for the collector must not count
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the listing's own descriptor is closed by now
            found.add((fd, os.readlink(f"/proc/self/fd/{fd}")))
    return found


def opened_since(baseline: set[tuple[str, str]], deadline_s: float = 10.0) -> set[tuple[str, str]]:
    """Descriptors opened since `baseline` and still open. The emulator's handler threads close their side once
    they see ours closed: wait for that, bounded. (One that other code closed meanwhile is no leak of ours.)"""
    end = time.monotonic() + deadline_s
    while (opened := open_descriptors() - baseline) and time.monotonic() < end:
        time.sleep(0.05)
    return opened


def documents_of(call: int) -> list[str]:
    return [f"apple pie call{call} doc{j}" if j % 2 else f"car call{call} doc{j}" for j in range(3)]


def check_own(call: int, response: RerankResponse) -> None:
    sent = documents_of(call)
    assert sorted(r.index for r in response.results) == [0, 1, 2]
    assert all(r.document.text == sent[r.index] for r in response.results)  # its own documents, where they were


def generic(emu: ProviderEmulator, **settings: Any) -> dict[str, Any]:
    return {"provider": "generic", "model": "m", "base_url": emu.base_url, "api_key": KEY, **settings}


async def hammer(reranker: Reranker) -> None:
    results = await asyncio.gather(*(reranker.arerank("apple pie", documents_of(i)) for i in range(ASYNC_CALLS)))
    for i, response in enumerate(results):
        check_own(i, response)

    def one(i: int) -> None:
        check_own(i, reranker.rerank("apple pie", documents_of(i)))

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        for job in [pool.submit(one, i) for i in range(THREADS)]:
            job.result(timeout=120)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts descriptors through /proc")
@pytest.mark.slow
async def test_1000_async_calls_and_200_threads_on_one_reranker(start_emulator: StartEmulator) -> None:
    emu = start_emulator("generic", api_key=KEY)
    baseline = open_descriptors()
    reranker = load_reranker(generic(emu, max_connections=16, timeout=30))
    assert isinstance(reranker, HTTPReranker)
    await asyncio.wait_for(hammer(reranker), timeout=180)
    assert emu.request_count == ASYNC_CALLS + THREADS
    assert emu.peak_in_flight <= 16  # the reranker-wide limit held across threads and tasks
    await reranker.aclose()
    assert opened_since(baseline) == set()


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts descriptors through /proc")
@pytest.mark.slow
async def test_the_same_load_through_a_fallback_chain(start_emulator: StartEmulator) -> None:
    down = start_emulator("generic", api_key=KEY)
    down.fail_always(Fault(status=503))
    healthy = start_emulator("generic", api_key=KEY)
    baseline = open_descriptors()
    chain = load_reranker(generic(down, max_retries=0, fallback=[generic(healthy, max_connections=16)]))
    await asyncio.wait_for(hammer(chain), timeout=180)
    assert healthy.request_count == ASYNC_CALLS + THREADS  # every call answered by the member that works
    await chain.aclose()
    assert opened_since(baseline) == set()


async def test_calls_split_into_batches_share_the_limit(start_emulator: StartEmulator) -> None:
    emu = start_emulator("generic", api_key=KEY)
    with HTTPReranker(
        "generic", model="m", base_url=emu.base_url, api_key=KEY, max_connections=8, max_documents_per_request=1
    ) as reranker:
        results = await asyncio.wait_for(
            asyncio.gather(*(reranker.arerank("apple pie", documents_of(i)) for i in range(200))), timeout=120
        )
    for i, response in enumerate(results):
        check_own(i, response)
    assert emu.request_count == 200 * 3
    assert emu.peak_in_flight <= 8


@pytest.mark.slow
def test_waiting_for_a_slot_is_not_the_providers_timeout(start_emulator: StartEmulator) -> None:
    """One connection, 0.2 s per answer, timeout 0.5 s: 20 threads wait up to 4 s in line, and none times out."""
    emu = start_emulator("generic", api_key=KEY, latency=0.2)
    errors: list[BaseException] = []
    with HTTPReranker(
        "generic", model="m", base_url=emu.base_url, api_key=KEY, max_connections=1, timeout=0.5, max_retries=0
    ) as reranker:

        def one(i: int) -> None:
            try:
                check_own(i, reranker.rerank("apple pie", documents_of(i)))
            except BaseException as error:  # collected, asserted below
                errors.append(error)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert errors == []
    assert emu.request_count == 20
    assert emu.peak_in_flight == 1


@pytest.mark.slow
async def test_waiting_async_calls_are_not_timed_out_by_the_queue(start_emulator: StartEmulator) -> None:
    """Two connections, 50 ms per answer, timeout 0.4 s: 100 calls queue about 2.5 s, and none times out."""
    emu = start_emulator("generic", api_key=KEY, latency=0.05)
    with HTTPReranker(
        "generic", model="m", base_url=emu.base_url, api_key=KEY, max_connections=2, timeout=0.4, max_retries=0
    ) as reranker:
        results = await asyncio.wait_for(
            asyncio.gather(*(reranker.arerank("apple pie", documents_of(i)) for i in range(100))), timeout=120
        )
    for i, response in enumerate(results):
        check_own(i, response)
    assert emu.request_count == 100
    assert emu.peak_in_flight <= 2


async def test_slots_are_served_first_come_first_served(start_emulator: StartEmulator) -> None:
    emu = start_emulator("generic", api_key=KEY, latency=0.05)
    with HTTPReranker("generic", model="m", base_url=emu.base_url, api_key=KEY, max_connections=1) as reranker:
        order: list[int] = []

        async def one(i: int) -> None:
            await reranker.arerank(f"q{i}", ["apple"])
            order.append(i)

        tasks = []
        for i in range(10):
            tasks.append(asyncio.ensure_future(one(i)))
            await asyncio.sleep(0)  # let task i queue before task i + 1 starts
        await asyncio.gather(*tasks)
    assert [request.body["query"] for request in emu.requests] == [f"q{i}" for i in range(10)]
    assert order == list(range(10))
