"""`close()`/`aclose()` called over and over while other threads and tasks keep calling: every call either finishes
on the client it started with or on a fresh one; none fails, and the server sees each call exactly once."""

from __future__ import annotations

import asyncio
import threading

import pytest

from rerank_core import RerankError
from tests.support.fixtures import StartEmulator
from tests.support.transport import make_reranker

DOCS = ["Paris is in France.", "Berlin is in Germany."]
CALLERS, CALLS_EACH = 6, 25


def test_close_storm_under_sync_load(start_emulator: StartEmulator) -> None:
    emu = start_emulator("generic", api_key="k")
    reranker = make_reranker(emu, api_key="k", max_connections=3, max_retries=0, timeout=20)
    done = threading.Event()
    failures: list[RerankError] = []
    answered: list[int] = []

    def caller() -> None:
        for _ in range(CALLS_EACH):
            try:
                answered.append(len(reranker.rerank("q", DOCS).results))
            except RerankError as error:
                failures.append(error)

    def closer() -> int:
        closes = 0
        while not done.is_set():
            reranker.close()
            closes += 1
        return closes

    closes: list[int] = []
    storm = threading.Thread(target=lambda: closes.append(closer()))
    storm.start()
    callers = [threading.Thread(target=caller) for _ in range(CALLERS)]
    for thread in callers:
        thread.start()
    for thread in callers:
        thread.join()
    done.set()
    storm.join()
    reranker.close()
    assert failures == []
    assert answered == [2] * CALLERS * CALLS_EACH
    assert emu.request_count == CALLERS * CALLS_EACH, "each call reached the server exactly once"
    assert closes[0] > CALLERS, "the storm really overlapped the calls"


@pytest.mark.slow
async def test_close_storm_under_async_load_with_a_closing_thread(start_emulator: StartEmulator) -> None:
    emu = start_emulator("generic", api_key="k")
    reranker = make_reranker(emu, api_key="k", max_connections=3, max_retries=0, timeout=20)
    done = threading.Event()

    def closer() -> None:
        while not done.is_set():
            reranker.close()  # from another thread: closes this loop's idle clients on the loop

    async def caller() -> list[int]:
        counts = []
        for _ in range(CALLS_EACH):
            counts.append(len((await reranker.arerank("q", DOCS)).results))
            await reranker.aclose()  # and from the loop itself, between calls
        return counts

    storm = threading.Thread(target=closer)
    storm.start()
    try:
        answers = await asyncio.gather(*[caller() for _ in range(CALLERS)])
    finally:
        done.set()
        await asyncio.to_thread(storm.join)
    await reranker.aclose()
    assert answers == [[2] * CALLS_EACH] * CALLERS
    assert emu.request_count == CALLERS * CALLS_EACH
