"""The circuit breaker's half-open state: after the cool-down exactly one call probes the member; every other call
skips it until that probe answers. Real loopback emulators; the primary holds its answer until the test lets go,
so "while the probe is in flight" is a state the test controls, not a timing guess."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from rerank_core import FallbackReranker, HTTPReranker, RerankResponse
from tests.cli.helpers import wait_until
from tests.support.emulator import Fault, ProviderEmulator, overlap_score
from tests.support.fixtures import StartEmulator

QUERY = "capital of france"
DOCS = ["paris is the capital of france", "berlin"]
WAITING = 5


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Held:
    """A scorer that, while `hold` is set, answers only once `release` is set."""

    def __init__(self) -> None:
        self.hold = threading.Event()
        self.release = threading.Event()

    def __call__(self, query: str, text: str) -> float:
        if self.hold.is_set():
            self.release.wait(60)
        return overlap_score(query, text)


@pytest.fixture
def held() -> Iterator[Held]:
    gate = Held()
    yield gate
    gate.release.set()  # never leave a server thread waiting


def member(emu: ProviderEmulator, model: str) -> HTTPReranker:
    return HTTPReranker("generic", model=model, base_url=emu.base_url, api_key="k", max_retries=0, timeout=3.0)


def tripped_chain(start_emulator: StartEmulator, held: Held) -> tuple[FallbackReranker, ProviderEmulator, Clock]:
    primary, backup = start_emulator("generic", scorer=held), start_emulator("generic")
    clock = Clock()
    chain = FallbackReranker(
        [member(primary, "primary-m"), member(backup, "backup-m")], failure_threshold=1, cooldown=10, clock=clock
    )
    primary.fail_next(Fault(status=500))
    assert chain.rerank(QUERY, DOCS).model == "backup-m"  # the primary failed once: its circuit is open
    assert chain.rerank(QUERY, DOCS).model == "backup-m"
    assert primary.request_count == 1
    clock.now += 11  # past the cool-down: half-open
    held.hold.set()
    return chain, primary, clock


def test_half_open_lets_exactly_one_probe_through(start_emulator: StartEmulator, held: Held) -> None:
    chain, primary, _ = tripped_chain(start_emulator, held)
    with ThreadPoolExecutor(WAITING + 1) as pool:
        probe = pool.submit(chain.rerank, QUERY, DOCS)
        wait_until(lambda: primary.request_count == 2)  # the probe is at the primary, held there
        others = [pool.submit(chain.rerank, QUERY, DOCS) for _ in range(WAITING)]
        answers: list[RerankResponse] = [future.result(timeout=60) for future in others]
        assert [answer.model for answer in answers] == ["backup-m"] * WAITING  # they skipped the probed member
        assert primary.request_count == 2
        held.release.set()
        assert probe.result(timeout=60).model == "primary-m"
    held.hold.clear()
    assert chain.rerank(QUERY, DOCS).model == "primary-m"  # the probe answered: the circuit is closed
    assert primary.request_count == 3


def test_a_failed_probe_opens_the_circuit_again_and_the_next_probe_is_one_call(
    start_emulator: StartEmulator, held: Held
) -> None:
    chain, primary, clock = tripped_chain(start_emulator, held)
    held.hold.clear()
    primary.fail_next(Fault(status=503))
    assert chain.rerank(QUERY, DOCS).model == "backup-m"  # the probe failed
    assert chain.rerank(QUERY, DOCS).model == "backup-m"
    assert primary.request_count == 2
    clock.now += 11
    held.hold.set()
    with ThreadPoolExecutor(WAITING + 1) as pool:
        probe = pool.submit(chain.rerank, QUERY, DOCS)
        wait_until(lambda: primary.request_count == 3)
        others = [pool.submit(chain.rerank, QUERY, DOCS).result(timeout=60).model for _ in range(WAITING)]
        assert others == ["backup-m"] * WAITING
        assert primary.request_count == 3
        held.release.set()
        assert probe.result(timeout=60).model == "primary-m"


async def test_half_open_async_one_probe_and_a_cancelled_probe_hands_over(
    start_emulator: StartEmulator, held: Held
) -> None:
    chain, primary, _ = tripped_chain(start_emulator, held)
    probe = asyncio.create_task(chain.arerank(QUERY, DOCS))
    await asyncio.to_thread(wait_until, lambda: primary.request_count == 2)
    answers = await asyncio.gather(*(chain.arerank(QUERY, DOCS) for _ in range(WAITING)))
    assert [answer.model for answer in answers] == ["backup-m"] * WAITING
    assert primary.request_count == 2

    probe.cancel()  # a probe that never answers must not bench the member for good
    with pytest.raises(asyncio.CancelledError):
        await probe
    held.hold.clear()
    held.release.set()
    assert (await chain.arerank(QUERY, DOCS)).model == "primary-m"  # the next call probed it
    assert primary.request_count == 3
    await chain.aclose()
