"""Batching over real HTTP: fan-out, one global ranking, the concurrency bound, and 413 splitting."""

from __future__ import annotations

import pytest
from tests.support.emulator import Fault, ProviderEmulator
from tests.support.fixtures import StartEmulator
from tests.support.transport import API_KEY, MODES, Mode, RecordedWaits, call, make_reranker, texts

from rerank_core import InvalidRequestError, ProviderError, RerankResponse
from rerank_core.dialects.generic import GenericDialect

QUERY = "alpha beta gamma delta"


def ranking(response: RerankResponse) -> list[tuple[int, float, str]]:
    return [(r.index, r.relevance_score, r.document.text) for r in response.results]


async def unbatched(emu: ProviderEmulator, docs: list[str], top_n: int | None = None) -> RerankResponse:
    with make_reranker(emu) as reranker:
        return reranker.rerank(QUERY, docs, top_n)


@pytest.mark.parametrize("mode", MODES)
async def test_fan_out_merges_into_the_unbatched_ranking(emu: ProviderEmulator, mode: Mode) -> None:
    docs = texts(57)
    expected = await unbatched(emu, docs)
    with make_reranker(emu, max_documents_per_request=10) as reranker:
        response = await call(reranker, mode, QUERY, docs)

    assert ranking(response) == ranking(expected)
    batches = [request.body["documents"] for request in emu.requests[1:]]
    assert sorted(len(batch) for batch in batches) == [7, 10, 10, 10, 10, 10]
    assert sorted(text for batch in batches for text in batch) == sorted(docs)
    assert response.usage == expected.usage  # summed over the batches
    assert response.request_ids == ["rerank_emulated"] * 6
    assert response.dropped == []


@pytest.mark.parametrize("mode", MODES)
async def test_fan_out_with_top_n_sends_a_capped_top_n_per_batch(emu: ProviderEmulator, mode: Mode) -> None:
    docs = texts(25)
    expected = await unbatched(emu, docs, top_n=4)
    with make_reranker(emu, max_documents_per_request=10) as reranker:
        response = await call(reranker, mode, QUERY, docs, top_n=4)

    assert ranking(response) == ranking(expected)
    assert sorted(request.body["top_n"] for request in emu.requests[1:]) == [4, 4, 4]
    assert len(response.dropped) == 21
    assert {d.index for d in response.dropped} | {r.index for r in response.results} == set(range(25))


@pytest.mark.parametrize("mode", MODES)
async def test_concurrency_is_bounded(start_emulator: StartEmulator, mode: Mode) -> None:
    emu = start_emulator("generic", latency=0.2)
    with make_reranker(emu, max_documents_per_request=2, max_concurrency=3) as reranker:
        response = await call(reranker, mode, QUERY, texts(18))
    assert emu.request_count == 9
    assert len(response.results) == 18
    assert emu.peak_in_flight == 3  # parallel, but never more than max_concurrency at once


@pytest.mark.parametrize("mode", MODES)
async def test_a_failed_batch_fails_the_call(emu: ProviderEmulator, mode: Mode) -> None:
    emu.fail_next(Fault(status=500, body={"error": {"message": "shard 3 is down"}}))
    reranker = make_reranker(emu, max_documents_per_request=5, max_retries=0, max_concurrency=1)
    with reranker, pytest.raises(ProviderError, match="shard 3 is down"):
        await call(reranker, mode, QUERY, texts(20))
    # The remaining batches are abandoned: none is sent after the failure (async: the next task may have just
    # been let through the semaphore when the failure lands; it is cancelled).
    if mode == "sync":
        assert emu.request_count == 1
    else:
        assert emu.request_count <= 2


@pytest.mark.parametrize("mode", MODES)
async def test_a_failed_batch_is_retried_alone_in_halves(emu: ProviderEmulator, mode: Mode) -> None:
    emu.fail_next(Fault(status=503))
    waits = RecordedWaits()
    with make_reranker(emu, waits=waits, max_documents_per_request=5) as reranker:
        response = await call(reranker, mode, QUERY, texts(20))
    # four batches of 5, one of them 503 -> retried as 2 + 3, not re-sent whole
    assert sorted(len(request.body["documents"]) for request in emu.requests) == [2, 3, 5, 5, 5, 5]
    assert len(waits.waits) == 1
    assert sorted(r.index for r in response.results) == list(range(20))


@pytest.mark.parametrize("mode", MODES)
async def test_413_splits_the_batch_in_half_until_it_fits(start_emulator: StartEmulator, mode: Mode) -> None:
    emu = start_emulator("generic", max_documents=8)
    docs = texts(20)
    with make_reranker(emu) as reranker:
        response = await call(reranker, mode, QUERY, docs)
    # 20 -> 413; 10 -> 413, 5, 5; 10 -> 413, 5, 5 (the halves go out at once, in any order)
    assert sorted(len(request.body["documents"]) for request in emu.requests) == [5, 5, 5, 5, 10, 10, 20]
    emu.max_documents = None
    assert ranking(response) == ranking(await unbatched(emu, docs))


@pytest.mark.parametrize("mode", MODES)
async def test_413_for_a_single_document_is_an_invalid_request(start_emulator: StartEmulator, mode: Mode) -> None:
    emu = start_emulator("generic", max_documents=0)
    with make_reranker(emu) as reranker, pytest.raises(InvalidRequestError) as caught:
        await call(reranker, mode, QUERY, ["one", "two"])
    assert caught.value.status_code == 413
    assert "too large" in str(caught.value)
    sizes = [len(request.body["documents"]) for request in emu.requests]
    assert sizes[0] == 2
    assert sizes[1:] in ([1], [1, 1])  # the halves go out together; the second may be cut short


def test_no_cap_means_one_request(emu: ProviderEmulator) -> None:
    with make_reranker(emu) as reranker:
        reranker.rerank(QUERY, texts(300))
    assert emu.request_count == 1


@pytest.mark.parametrize("mode", MODES)
async def test_a_dialects_own_batch_too_large_answer_splits_like_413(start_emulator: StartEmulator, mode: Mode) -> None:
    """The `is_batch_too_large` hook: a server that says "too many documents" with a 422 (as Infinity does)."""

    class TooManyIs422(GenericDialect):
        def is_batch_too_large(self, status_code: int, body: str) -> bool:
            return status_code == 422 and "too many documents" in body

    emu = start_emulator("generic", api_key=API_KEY)
    emu.fail_next(Fault(status=422, body={"detail": "too many documents in one batch"}))
    waits = RecordedWaits()
    with make_reranker(emu, waits=waits) as reranker:
        reranker.dialect = TooManyIs422()
        response = await call(reranker, mode, QUERY, texts(6))
    assert sorted(len(request.body["documents"]) for request in emu.requests) == [3, 3, 6]
    assert waits.waits == []  # a split is not a retry
    assert sorted(r.index for r in response.results) == list(range(6))
