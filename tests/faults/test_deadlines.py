"""One deadline per attempt, sync and async: a server dripping its status line and headers (each byte well inside
any per-read timeout) cannot hold a call past `timeout x attempts`, directly or inside a fail-open chain.

GRACE is what a call may take beyond its attempts' deadlines: starting the pool, parsing, raising, and the test
process being descheduled on a shared CPU. It is a fixed allowance, never scaled to this machine's speed; the
dripping head here would take over 15 s to arrive, so a missing deadline cannot hide inside it.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from rerank_core import RerankTimeoutError, load_reranker
from tests.support.emulator import Fault
from tests.support.fixtures import StartEmulator
from tests.support.transport import MODES, Mode, RecordedWaits, call, make_reranker

GRACE = 1.5
DRIP = Fault(head_drip_interval=0.25)  # a head of ~80 bytes: 20 s if nothing cuts it short
DOCS = ["apple pie", "car repair", "pie crust"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("retries", [0, 1])
@pytest.mark.slow
async def test_a_dripping_head_is_cut_at_the_attempt_deadline(
    start_emulator: StartEmulator, mode: Mode, retries: int
) -> None:
    emu = start_emulator("generic")
    emu.fail_always(DRIP)
    with make_reranker(emu, waits=RecordedWaits(), timeout=1.0, max_retries=retries) as reranker:
        started = time.monotonic()
        with pytest.raises(RerankTimeoutError, match="timeout=1 s") as caught:
            await call(reranker, mode, "apple", DOCS)
        elapsed = time.monotonic() - started
    assert elapsed < 1.0 * (retries + 1) + GRACE
    assert caught.value.hint
    assert caught.value.__cause__ is None


@pytest.mark.parametrize("mode", MODES)
async def test_a_dripping_head_fails_open_within_the_deadline(start_emulator: StartEmulator, mode: Mode) -> None:
    emu = start_emulator("generic")
    emu.fail_always(DRIP)
    config: dict[str, Any] = {"provider": "generic", "model": "m", "base_url": emu.base_url, "timeout": 1.0}
    with load_reranker({**config, "max_retries": 0, "on_failure": "passthrough"}) as chain:
        started = time.monotonic()
        response = await call(chain, mode, "apple", DOCS)
        elapsed = time.monotonic() - started
    assert response.passthrough
    assert [r.document.text for r in response.results] == DOCS
    assert elapsed < 1.0 + GRACE


def test_the_timed_out_connection_is_closed_not_pooled(start_emulator: StartEmulator) -> None:
    """The abandoned exchange leaves nothing behind: its connection is gone from the pool, and the next call on
    the same reranker gets a fresh one and its right answer."""
    emu = start_emulator("generic")
    emu.fail_next(DRIP)
    with make_reranker(emu, waits=RecordedWaits(), timeout=1.0, max_retries=0) as reranker:
        with pytest.raises(RerankTimeoutError):
            reranker.rerank("apple", DOCS)
        lease = reranker._pool._sync_lease
        assert lease is not None
        assert lease.client._transport._pool.connections == []  # type: ignore[attr-defined]
        response = reranker.rerank("apple", DOCS)
    assert response.results[0].document.text == "apple pie"


def test_a_deadline_does_not_cut_a_slow_but_timely_answer(start_emulator: StartEmulator) -> None:
    """The deadline is the attempt's, not each read's: a head dripping for well under `timeout` is read whole."""
    emu = start_emulator("generic")
    emu.fail_next(Fault(head_drip_interval=0.002))  # ~80 bytes in about 0.2 s
    with make_reranker(emu, timeout=10.0, max_retries=0) as reranker:
        response = reranker.rerank("apple", DOCS)
    assert sorted(r.index for r in response.results) == [0, 1, 2]
