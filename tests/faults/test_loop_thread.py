"""A sync `rerank()` on an event loop's own thread, while that loop's `arerank` calls hold every connection slot,
must fail at once with a typed error, not wait forever for slots only the blocked loop could free."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from rerank_core import ConfigurationError
from tests.support.emulator import Fault
from tests.support.fixtures import StartEmulator
from tests.support.transport import make_reranker

DOCS = ["Paris is in France.", "Berlin is in Germany."]


def run_in_own_loop_thread(scenario: Callable[[], Any], bound: float = 60.0) -> Any:
    """Run `scenario` (a coroutine function) with asyncio.run in a daemon thread: a deadlock there fails this
    test after `bound` seconds instead of hanging the suite."""
    outcome: dict[str, Any] = {}

    def main() -> None:
        try:
            outcome["value"] = asyncio.run(scenario())
        except BaseException as error:  # handed to the test thread
            outcome["error"] = error

    worker = threading.Thread(target=main, daemon=True)
    worker.start()
    worker.join(bound)
    assert not worker.is_alive(), "the event loop thread is deadlocked"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


async def until(condition: Callable[[], bool], bound: float = 30.0) -> None:
    deadline = time.monotonic() + bound
    while not condition():
        assert time.monotonic() < deadline, "condition never met"
        await asyncio.sleep(0.005)


def test_sync_call_on_the_loop_thread_refuses_instead_of_deadlocking(start_emulator: StartEmulator) -> None:
    emu = start_emulator("generic", api_key="k")
    emu.fail_always(Fault(delay=0.5))  # slow answers: the async calls hold their slots meanwhile
    reranker = make_reranker(emu, api_key="k", max_connections=2)

    async def scenario() -> tuple[str, int]:
        tasks = [asyncio.create_task(reranker.arerank("q", DOCS)) for _ in range(3)]  # 2 hold, 1 waits
        await until(lambda: reranker._in_flight.in_use == 2)
        started = time.monotonic()
        with pytest.raises(ConfigurationError, match="event loop") as caught:
            reranker.rerank("q", DOCS)
        assert time.monotonic() - started < 5, "refused at once, not after a wait"
        assert "arerank" in (caught.value.hint or "")
        emu.fail_always(None)
        answers = await asyncio.gather(*tasks)
        await reranker.aclose()
        return caught.value.provider or "", len(answers)

    provider, answered = run_in_own_loop_thread(scenario)
    assert provider == "generic"
    assert answered == 3, "the loop's own calls still complete"


def test_sync_call_on_a_loop_thread_works_when_the_loop_holds_no_slot(start_emulator: StartEmulator) -> None:
    emu = start_emulator("generic", api_key="k")
    reranker = make_reranker(emu, api_key="k", max_connections=1)

    async def scenario() -> int:
        await reranker.arerank("q", DOCS)  # the loop used the reranker before, and released its slot
        response = reranker.rerank("q", DOCS)
        await reranker.aclose()
        return len(response.results)

    assert run_in_own_loop_thread(scenario) == 2


def test_sync_call_on_a_loop_thread_waits_for_slots_held_by_other_threads(start_emulator: StartEmulator) -> None:
    emu = start_emulator("generic", api_key="k")
    release = threading.Event()
    reranker = make_reranker(emu, api_key="k", max_connections=1)
    holder_ready = threading.Event()

    def hold_the_only_slot() -> None:
        with reranker._in_flight.hold():
            holder_ready.set()
            release.wait(30)

    holder = threading.Thread(target=hold_the_only_slot, daemon=True)
    holder.start()
    assert holder_ready.wait(30)

    async def scenario() -> int:
        threading.Timer(0.2, release.set).start()  # another thread frees the slot; waiting for it is safe
        return len(reranker.rerank("q", DOCS).results)

    assert run_in_own_loop_thread(scenario) == 2
    holder.join(30)
    reranker.close()
