"""A batch's retries and halves sent back to the replica that just failed them.

A 5xx splits a batch in halves, and each half has retries of its own. If a half forgets which replica failed the
whole batch, a replica that fails fast looks like the quickest server and gets the half, then its retry, and the
call runs out of retries on one broken server while two healthy ones idle. Every retry and every half must keep
away from each replica the batch already failed on, as long as another replica is usable.
"""

from __future__ import annotations

import httpx
import pytest

from rerank_core.http import replicas as replicas_module
from rerank_core.http.replicas import Replica, Replicas
from tests.support.emulator import Fault
from tests.support.fixtures import StartEmulator
from tests.support.transport import MODES, Mode, RecordedWaits, call, make_reranker

DOCS = ["apple pie", "car repair", "pie crust", "apple tart"]


def replica(name: str) -> Replica:
    return Replica(httpx.URL(f"http://{name}"), f"http://{name}")


def test_every_replica_to_avoid_is_kept_away_from_while_another_is_usable() -> None:
    a, b, c = replica("a"), replica("b"), replica("c")
    replicas = Replicas([a, b, c])
    for _ in range(5):
        with replicas.use(avoid={a, b}) as picked:
            assert picked is c


def test_a_request_is_never_refused_when_every_replica_is_to_be_avoided() -> None:
    a, b = replica("a"), replica("b")
    replicas = Replicas([a, b])
    with replicas.use(avoid={a, b}) as picked:
        assert picked in (a, b)


@pytest.mark.parametrize("mode", MODES)
async def test_a_fast_failing_replica_gets_at_most_one_request_of_each_call(
    start_emulator: StartEmulator, monkeypatch: pytest.MonkeyPatch, mode: Mode
) -> None:
    # No cooldown: the broken replica is probed again on every call, and it answers its 503 far quicker than
    # the healthy ones answer at all, so by latency alone it is always the best pick.
    monkeypatch.setattr(replicas_module, "FIRST_COOLDOWN", 0.0)
    broken = start_emulator("generic")
    healthy = [start_emulator("generic", latency=0.05) for _ in range(2)]
    broken.fail_always(Fault(status=503))
    with make_reranker(
        [broken.base_url] + [emu.base_url for emu in healthy], waits=RecordedWaits(), max_retries=2
    ) as reranker:
        for _ in range(6):
            before = broken.request_count
            response = await call(reranker, mode, "apple", DOCS)
            assert sorted(result.index for result in response.results) == [0, 1, 2, 3]
            assert broken.request_count - before <= 1
    assert broken.request_count >= 1  # it was tried: the rule above was put to the test


def test_a_replica_whose_cooldown_is_over_gets_the_next_request_as_its_probe() -> None:
    a, b = replica("a"), replica("b")
    replicas = Replicas([a, b])
    for _ in range(2):
        replicas.report(a, True, 0.01)  # known, with a latency figure of its own
    for _ in range(replicas_module.FAILURES_TO_OPEN):
        replicas.report(a, False, 5.0)  # failed slowly: by latency alone it would never be picked again
    for _ in range(3):
        with replicas.use() as picked:
            assert picked is b
            replicas.report(b, True, 0.01)
    a.open_until = 0.0  # the cooldown is over
    with replicas.use() as probe:
        assert probe is a
        replicas.report(a, True, 0.01)
    assert a.latency == 0.01  # judged by how it answers now
