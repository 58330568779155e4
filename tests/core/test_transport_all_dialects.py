"""The transport is dialect-agnostic: batching, per-batch top_n and retries work the same over every wire format."""

from __future__ import annotations

from typing import Any

import pytest
from tests.dialects.cases import CLOUDS
from tests.support.dialect_apps import CLOUDFLARE_ACCOUNT
from tests.support.emulator import Fault, ProviderEmulator
from tests.support.fixtures import StartEmulator
from tests.support.transport import API_KEY, RecordedWaits, texts

from rerank_core import HTTPReranker, RerankResponse
from rerank_core.dialects import DIALECTS
from rerank_core.http.retry import RetryPolicy

QUERY = "alpha beta gamma delta"
PROVIDERS = sorted(set(DIALECTS) - CLOUDS)  # the clouds sign requests: tests/dialects/test_<cloud>.py


OPTIONS: dict[str, dict[str, Any]] = {"cloudflare": {"account_id": CLOUDFLARE_ACCOUNT}}
"""What a provider cannot work without beyond a key (the account its endpoint names)."""


def reranker_for(provider: str, emu: ProviderEmulator, **kwargs: Any) -> HTTPReranker:
    kwargs.setdefault("options", OPTIONS.get(provider, {}))
    reranker = HTTPReranker(provider, model="test-model", base_url=emu.base_url, api_key=API_KEY, **kwargs)
    waits = RecordedWaits()
    reranker.retry_policy = RetryPolicy(max_retries=2, sleep=waits.sleep, asleep=waits.asleep)
    return reranker


def ranking(response: RerankResponse) -> list[tuple[int, float]]:
    return [(r.index, r.relevance_score) for r in response.results]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_batched_ranking_equals_unbatched(start_emulator: StartEmulator, provider: str) -> None:
    emu = start_emulator(provider, api_key=API_KEY)
    docs = texts(25)
    with reranker_for(provider, emu) as whole:
        expected = whole.rerank(QUERY, docs, top_n=4)
    sent_before = emu.request_count
    with reranker_for(provider, emu, max_documents_per_request=10, max_concurrency=2) as batched:
        got_sync = batched.rerank(QUERY, docs, top_n=4)
        got_async = await batched.arerank(QUERY, docs, top_n=4)
    assert ranking(got_sync) == ranking(expected)
    assert ranking(got_async) == ranking(expected)
    assert len(expected.results) == 4
    assert emu.request_count - sent_before == 6  # 3 batches, sync then async


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_retry_then_success(start_emulator: StartEmulator, provider: str) -> None:
    emu = start_emulator(provider, api_key=API_KEY)
    emu.fail_next(Fault(status=503), Fault(status=429))
    with reranker_for(provider, emu) as reranker:
        response = reranker.rerank(QUERY, texts(5))
    assert emu.request_count == 4  # the 503 batch is retried as 2 + 3 documents, one of which gets the 429
    assert len(response.results) == 5


def test_a_dialect_cap_applies_when_the_caller_sets_none(start_emulator: StartEmulator) -> None:
    emu = start_emulator("tei", api_key=API_KEY)
    cap = DIALECTS["tei"].max_documents_per_request
    assert cap is not None
    with reranker_for("tei", emu) as reranker:
        response = reranker.rerank(QUERY, texts(2 * cap + 5))
    assert emu.request_count == 3
    assert len(response.results) == 2 * cap + 5
