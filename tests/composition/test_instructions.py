"""`instruction`: per call and from config, sent by the APIs that take one, honoured by local LLM rerankers,
forwarded by the composites (and part of the cache key), refused by everything else, never dropped."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from rerank_core import ConfigurationError, InvalidInputError, load_reranker
from rerank_core.errors import UnsupportedInputError
from tests.support.fixtures import StartEmulator

QUERY = "red apple pie"
DOCS = ["blue sky", "red apple", "apple pie red"]
TASK = "Given a recipe question, find the matching dish"


@pytest.fixture(scope="module")
def tiny_qwen3(tmp_path_factory: pytest.TempPathFactory) -> str:
    from tests.support.tiny_models import build_tiny_qwen3_reranker

    return build_tiny_qwen3_reranker(tmp_path_factory.mktemp("tiny-qwen3-instructions"))


def scores(response: Any) -> dict[int, float]:
    return {result.index: result.relevance_score for result in response.results}


@pytest.mark.parametrize(("provider", "field"), [("vllm", "instruction"), ("fireworks", "task")])
def test_apis_that_take_an_instruction_get_it_per_call_and_from_options(
    provider: str, field: str, start_emulator: StartEmulator
) -> None:
    emu = start_emulator(provider)
    plain = load_reranker(f"{provider}:m", base_url=emu.base_url, api_key="k", max_retries=0)
    plain.rerank(QUERY, DOCS)
    plain.rerank(QUERY, DOCS, instruction=TASK)
    asyncio.run(plain.arerank(QUERY, DOCS, instruction="async task"))
    configured = load_reranker(
        f"{provider}:m", base_url=emu.base_url, api_key="k", max_retries=0, options={"instruction": "default task"}
    )
    configured.rerank(QUERY, DOCS)
    configured.rerank(QUERY, DOCS, instruction=TASK)  # the call's instruction wins over the default
    bodies = [request.body for request in emu.requests]
    assert [body.get(field) for body in bodies] == [None, TASK, "async task", "default task", TASK]
    assert all("instruction" not in body for body in bodies if field != "instruction")


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_apis_without_one_refuse_it_before_sending(mode: str, start_emulator: StartEmulator) -> None:
    emu = start_emulator("cohere")
    reranker = load_reranker("cohere:m", base_url=emu.base_url, api_key="k", max_retries=0)

    def call() -> object:
        if mode == "sync":
            return reranker.rerank(QUERY, DOCS, instruction=TASK)
        return asyncio.run(reranker.arerank(QUERY, DOCS, instruction=TASK))

    with pytest.raises(UnsupportedInputError, match="cannot follow an instruction"):
        call()
    with pytest.raises(UnsupportedInputError):
        reranker.rerank(QUERY, [], instruction=TASK)  # refused even with nothing to score
    assert emu.requests == []
    with pytest.raises(ConfigurationError, match="cannot follow an instruction"):
        load_reranker("cohere:m", base_url=emu.base_url, api_key="k", options={"instruction": TASK})


@pytest.mark.parametrize("bad", ["", "   ", 3])
def test_a_bad_instruction_is_invalid_input(bad: object, start_emulator: StartEmulator) -> None:
    emu = start_emulator("vllm")
    reranker = load_reranker("vllm:m", base_url=emu.base_url, max_retries=0)
    with pytest.raises(InvalidInputError, match="instruction must be"):
        reranker.rerank(QUERY, DOCS, instruction=bad)  # type: ignore[arg-type]


def test_local_llm_reranker_per_call_equals_config_default(tiny_qwen3: str) -> None:
    per_call = load_reranker(f"local:{tiny_qwen3}")
    configured = load_reranker(f"local:{tiny_qwen3}", options={"instruction": TASK})
    told = scores(per_call.rerank(QUERY, DOCS, instruction=TASK))
    assert told == pytest.approx(scores(configured.rerank(QUERY, DOCS)), abs=1e-6)
    assert scores(asyncio.run(per_call.arerank(QUERY, DOCS, instruction=TASK))) == pytest.approx(told, abs=1e-6)
    default = scores(per_call.rerank(QUERY, DOCS))
    assert max(abs(told[i] - default[i]) for i in told) > 1e-4


def test_plain_cross_encoders_refuse_it(tiny_cross_encoder: str) -> None:
    reranker = load_reranker(f"local:{tiny_cross_encoder}")
    with pytest.raises(UnsupportedInputError, match="cannot follow an instruction"):
        reranker.rerank(QUERY, DOCS, instruction=TASK)
    with pytest.raises(ConfigurationError, match="cannot follow an instruction"):
        load_reranker(f"local:{tiny_cross_encoder}", options={"instruction": TASK}).rerank(QUERY, DOCS)


def test_the_cache_keys_on_the_instruction(tiny_qwen3: str) -> None:
    reranker = load_reranker({"provider": "local", "model": tiny_qwen3, "cache": "memory"})
    first = reranker.rerank(QUERY, DOCS, instruction=TASK)
    other = reranker.rerank(QUERY, DOCS, instruction="something else entirely")
    plain = reranker.rerank(QUERY, DOCS)
    again = reranker.rerank(QUERY, DOCS, instruction=TASK)
    assert [response.cache.hits if response.cache else None for response in (first, other, plain, again)] == [
        0,
        0,
        0,
        len(DOCS),
    ]
    assert scores(again) == scores(first)
    assert scores(other) != scores(first)


def test_fallback_passes_over_a_member_that_cannot_follow_it(tiny_cross_encoder: str, tiny_qwen3: str) -> None:
    chain = load_reranker(
        {"provider": "local", "model": tiny_cross_encoder, "fallback": [{"provider": "local", "model": tiny_qwen3}]}
    )
    response = chain.rerank(QUERY, DOCS, instruction=TASK)
    expected = scores(load_reranker(f"local:{tiny_qwen3}").rerank(QUERY, DOCS, instruction=TASK))
    assert scores(response) == pytest.approx(expected, abs=1e-6)
    plain = chain.rerank(QUERY, DOCS)  # without one, the first member answers as before
    assert scores(plain) == pytest.approx(scores(load_reranker(f"local:{tiny_cross_encoder}").rerank(QUERY, DOCS)))


def test_long_document_chunking_forwards_it(tiny_qwen3: str) -> None:
    reranker = load_reranker(
        {
            "provider": "local",
            "model": tiny_qwen3,
            "long_documents": "chunk",
            "max_tokens_per_document": 64,
            "options": {"max_length": 256},
        }
    )
    long = "red apple pie " * 200
    told = reranker.rerank(QUERY, [long, "blue sky"], instruction=TASK)
    plain = reranker.rerank(QUERY, [long, "blue sky"])
    assert scores(told) != scores(plain)
