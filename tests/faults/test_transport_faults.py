"""Provider misbehaviour over real HTTP: slow, broken, lying or unreachable servers. Nothing is silently lost."""

from __future__ import annotations

import math
import socket
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from rerank_core import (
    RerankConnectionError,
    RerankTimeoutError,
    ResponseFormatError,
)
from rerank_core.dialects import ParsedResponse
from rerank_core.dialects.generic import GenericDialect
from tests.support.emulator import Fault, ProviderEmulator
from tests.support.transport import API_KEY, MODES, Mode, RecordedWaits, call, make_reranker

QUERY = "apple pie"
DOCS = ["apple pie", "car", "pie", "apple"]


def results_mutation(change: Callable[[list[dict[str, Any]]], object]) -> Callable[[Any], Any]:
    def mutate(payload: Any) -> Any:
        change(payload["results"])
        return payload

    return mutate


@pytest.mark.parametrize("mode", MODES)
async def test_slow_response_past_the_timeout(emu: ProviderEmulator, waits: RecordedWaits, mode: Mode) -> None:
    emu.fail_always(Fault(delay=0.6))
    reranker = make_reranker(emu, waits=waits, timeout=0.2, max_retries=2)
    with reranker, pytest.raises(RerankTimeoutError) as caught:
        await call(reranker, mode, QUERY, DOCS[:1])  # one document: more would be retried as two halves
    assert emu.request_count == 3
    assert caught.value.provider == "generic"
    assert "3 attempts" in str(caught.value)


@pytest.mark.parametrize("mode", MODES)
async def test_one_slow_response_then_success(emu: ProviderEmulator, waits: RecordedWaits, mode: Mode) -> None:
    emu.fail_next(Fault(delay=0.6))
    with make_reranker(emu, waits=waits, timeout=0.2) as reranker:
        response = await call(reranker, mode, QUERY, DOCS)
    # the batch that timed out is retried as two halves
    assert sorted(len(request.body["documents"]) for request in emu.requests) == [2, 2, 4]
    assert sorted(r.index for r in response.results) == [0, 1, 2, 3]


@pytest.mark.parametrize("mode", MODES)
async def test_truncated_json_is_a_format_error(emu: ProviderEmulator, waits: RecordedWaits, mode: Mode) -> None:
    emu.fail_next(
        Fault(raw=b'{"results": [{"index": 0, "relevance_score": 0.9}, {"ind', headers={"x-request-id": "r-7"})
    )
    with make_reranker(emu, waits=waits) as reranker, pytest.raises(ResponseFormatError) as caught:
        await call(reranker, mode, QUERY, DOCS)
    assert emu.request_count == 1  # a 200 with a broken body is not retried
    assert caught.value.status_code == 200
    assert caught.value.request_id == "r-7"
    assert "not valid JSON" in str(caught.value)


async def test_html_instead_of_json(emu: ProviderEmulator) -> None:
    emu.fail_next(Fault(raw=b"<html>gateway says hi</html>"))
    with make_reranker(emu) as reranker, pytest.raises(ResponseFormatError, match="gateway says hi"):
        reranker.rerank(QUERY, DOCS)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda results: results[0].update(index=99), "index 99"),
        (lambda results: results[0].update(index=-1), "index -1"),
        (lambda results: results[1].update(index=results[0]["index"]), "more than once"),
        (lambda results: results[0].update(relevance_score=math.nan), "non-finite"),
        (lambda results: results[0].update(relevance_score=math.inf), "non-finite"),
        (lambda results: results[0].update(relevance_score="high"), "non-numeric"),
        (lambda results: results[0].pop("relevance_score"), "no score"),
        (lambda results: results.pop(), "3 scores for 4 documents"),
        (lambda results: results.clear(), "0 scores for 4 documents"),
    ],
    ids=["out-of-range", "negative", "duplicate", "nan", "inf", "string-score", "no-score", "one-missing", "empty"],
)
@pytest.mark.parametrize("mode", MODES)
async def test_lying_responses_raise(
    emu: ProviderEmulator, mode: Mode, change: Callable[[list[dict[str, Any]]], object], message: str
) -> None:
    emu.fail_next(Fault(mutate=results_mutation(change)))
    with make_reranker(emu) as reranker, pytest.raises(ResponseFormatError, match=message) as caught:
        await call(reranker, mode, QUERY, DOCS)
    assert caught.value.provider == "generic"
    assert caught.value.status_code == 200
    assert emu.request_count == 1


async def test_missing_result_list(emu: ProviderEmulator) -> None:
    emu.fail_next(Fault(body={"object": "list", "model": "m"}))
    with make_reranker(emu) as reranker, pytest.raises(ResponseFormatError, match="no result list"):
        reranker.rerank(QUERY, DOCS)


async def test_fewer_than_top_n_results_raise(emu: ProviderEmulator) -> None:
    emu.fail_next(Fault(mutate=results_mutation(lambda results: results.pop())))
    with make_reranker(emu) as reranker, pytest.raises(ResponseFormatError, match=r"1 scores.*top_n=2"):
        reranker.rerank(QUERY, DOCS, top_n=2)


@pytest.mark.parametrize("mode", MODES)
async def test_ignored_top_n_is_cut_on_the_client(emu: ProviderEmulator, mode: Mode) -> None:
    emu.fail_next(Fault(ignore_top_n=True))
    with make_reranker(emu) as reranker:
        response = await call(reranker, mode, QUERY, DOCS, top_n=2)
    assert len(emu.requests) == 1
    assert emu.requests[0].body["top_n"] == 2
    assert [r.index for r in response.results] == [0, 2]
    assert sorted(d.index for d in response.dropped) == [1, 3]


@pytest.mark.parametrize("mode", MODES)
async def test_connection_refused(waits: RecordedWaits, mode: Mode) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago, with nobody listening now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    reranker = make_reranker(f"http://127.0.0.1:{port}", waits=waits, max_retries=1)
    with reranker, pytest.raises(RerankConnectionError, match=f"127.0.0.1:{port}") as caught:
        await call(reranker, mode, QUERY, DOCS)
    assert len(waits.waits) == 1  # one retry, then give up
    assert "2 attempts" in str(caught.value)
    assert API_KEY not in str(caught.value)


@pytest.mark.parametrize("mode", MODES)
async def test_dropped_connection_is_retried(emu: ProviderEmulator, waits: RecordedWaits, mode: Mode) -> None:
    emu.fail_next(Fault(drop_connection=True))
    with make_reranker(emu, waits=waits) as reranker:
        response = await call(reranker, mode, QUERY, DOCS)
    assert emu.request_count == 2
    assert len(response.results) == 4


@pytest.mark.parametrize("mode", MODES)
async def test_connection_always_dropped(emu: ProviderEmulator, waits: RecordedWaits, mode: Mode) -> None:
    emu.fail_always(Fault(drop_connection=True))
    with make_reranker(emu, waits=waits, max_retries=2) as reranker, pytest.raises(RerankConnectionError):
        await call(reranker, mode, QUERY, DOCS)
    assert emu.request_count == 3


async def test_a_dialect_tripping_over_an_odd_payload_becomes_a_format_error(emu: ProviderEmulator) -> None:
    class FragileDialect(GenericDialect):
        def parse(self, payload: Any, *, headers: Mapping[str, str], n_documents: int) -> ParsedResponse:
            return ParsedResponse(scores=[(0, payload["scores"][0])])  # KeyError on a real generic answer

    with make_reranker(emu) as reranker:
        reranker.dialect = FragileDialect()
        with pytest.raises(ResponseFormatError, match="unexpected response shape") as caught:
            reranker.rerank(QUERY, DOCS)
    assert caught.value.status_code == 200
