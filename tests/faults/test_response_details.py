"""Details of a 2xx answer that must not decide the call: a success status carrying an error object reports the
provider's own words, and a usage counter that is not a count (1e400, NaN, "²", negative, huge) is dropped while
the valid ranking is kept. Real loopback emulators, sync and async."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from rerank_core import HTTPReranker, RerankResponse, ResponseFormatError
from tests.support.emulator import Fault, ProviderEmulator
from tests.support.fixtures import StartEmulator

MODES = ["sync", "async"]
QUERY = "capital of france"
DOCS = ["paris is the capital of france", "berlin"]
RESULTS = '[{"index": 0, "relevance_score": 0.9}, {"index": 1, "relevance_score": 0.1}]'


def call(mode: str, reranker: HTTPReranker) -> RerankResponse:
    with reranker:
        if mode == "sync":
            return reranker.rerank(QUERY, DOCS)
        return asyncio.run(reranker.arerank(QUERY, DOCS))


def client(emu: ProviderEmulator, dialect: str = "generic") -> HTTPReranker:
    return HTTPReranker(dialect, model="m", base_url=emu.base_url, api_key="k", max_retries=0)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("body", "said"),
    [
        ({"error": {"message": "model m is overloaded", "type": "server_error"}}, "'model m is overloaded'"),
        ({"object": "error", "message": "context length exceeded"}, "'context length exceeded'"),
        ({"detail": "deployment is scaling up"}, "'deployment is scaling up'"),
        ({"error": "rate limited upstream"}, "'rate limited upstream'"),
        ({"error": {"message": "x" * 5000}}, "a message of 5000 characters"),
    ],
)
def test_a_200_error_object_reports_the_providers_message(
    start_emulator: StartEmulator, mode: str, body: dict[str, Any], said: str
) -> None:
    emu = start_emulator("generic")
    emu.fail_next(Fault(body=body))
    with pytest.raises(ResponseFormatError) as caught:
        call(mode, client(emu))
    assert f"the provider answered with an error instead of a result list: {said}" in str(caught.value)
    assert caught.value.status_code == 200
    assert "x" * 600 not in str(caught.value)  # an overlong message is left out whole, never cut


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "usage",
    [
        '{"prompt_tokens": -5, "total_tokens": 1e400}',
        '{"prompt_tokens": NaN, "total_tokens": 1000000000000000000000000000000}',
    ],
)
def test_absurd_generic_usage_is_dropped_and_the_ranking_kept(
    start_emulator: StartEmulator, mode: str, usage: str
) -> None:
    emu = start_emulator("generic")
    emu.fail_next(Fault(raw=f'{{"results": {RESULTS}, "usage": {usage}}}'.encode()))
    response = call(mode, client(emu))
    assert [(result.index, result.relevance_score) for result in response.results] == [(0, 0.9), (1, 0.1)]
    assert response.usage.prompt_tokens is None
    assert response.usage.total_tokens is None


def cohere_answer(units: str) -> bytes:
    meta = f'{{"billed_units": {{"search_units": {units}}}, "tokens": {{"input_tokens": {units}}}}}'
    return f'{{"id": "r", "results": {RESULTS}, "meta": {meta}}}'.encode()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("units", ["1e400", "NaN", "-Infinity", "-3", "1e300"])
def test_absurd_cohere_billed_units_are_dropped(start_emulator: StartEmulator, mode: str, units: str) -> None:
    emu = start_emulator("cohere")
    emu.fail_next(Fault(raw=cohere_answer("2.0")), Fault(raw=cohere_answer(units)))
    sane = call(mode, client(emu, "cohere"))
    assert (sane.usage.search_units, sane.usage.prompt_tokens) == (2, 2)  # counts are read, integral floats too
    response = call(mode, client(emu, "cohere"))
    assert [result.index for result in response.results] == [0, 1]
    assert response.usage.search_units is None
    assert response.usage.prompt_tokens is None


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("header", ["\u00b2", "\u00b9\u00b2"])
def test_tei_token_header_takes_ascii_digits_only(start_emulator: StartEmulator, mode: str, header: str) -> None:
    emu = start_emulator("tei")
    body = json.dumps([{"index": 0, "score": 0.9}, {"index": 1, "score": 0.1}]).encode()
    emu.fail_next(
        Fault(raw=body, headers={"x-compute-tokens": "7"}), Fault(raw=body, headers={"x-compute-tokens": header})
    )
    assert call(mode, client(emu, "tei")).usage.prompt_tokens == 7
    response = call(mode, client(emu, "tei"))  # "²".isdigit() is True, but it is no count
    assert [result.index for result in response.results] == [0, 1]
    assert response.usage.prompt_tokens is None
