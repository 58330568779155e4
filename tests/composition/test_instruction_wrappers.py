"""The three framework wrappers pass `instruction` on (LangChain and LlamaIndex as a field, Haystack as an init
value that `run` may override), serialize it, and surface a backend's refusal instead of dropping it."""

from __future__ import annotations

import asyncio

import pytest
from haystack import Document as HaystackDocument
from haystack.utils import Secret
from langchain_core.documents import Document as LangChainDocument
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from haystack_integrations.components.rankers.rerank import RerankRanker
from rerank_core import UnsupportedInputError
from rerank_langchain import RerankCompressor
from rerank_llamaindex import RerankPostprocessor
from tests.support.emulator import ProviderEmulator
from tests.support.fixtures import StartEmulator

TASK = "Given a question, find the answer"
TEXTS = ["paris is the capital of france", "berlin is in germany"]
QUERY = "capital of france"


def config(emu: ProviderEmulator, provider: str = "vllm") -> dict[str, object]:
    return {"provider": provider, "model": "m", "base_url": emu.base_url, "api_key": "k", "max_retries": 0}


def sent(emu: ProviderEmulator) -> list[object]:
    return [request.body.get("instruction") for request in emu.requests]


def test_langchain(start_emulator: StartEmulator) -> None:
    emu = start_emulator("vllm")
    compressor = RerankCompressor(reranker=config(emu), instruction=TASK)
    compressor.compress_documents([LangChainDocument(page_content=t) for t in TEXTS], QUERY)
    asyncio.run(compressor.acompress_documents([LangChainDocument(page_content=t) for t in TEXTS], QUERY))
    compressor.rerank(TEXTS, QUERY)
    assert sent(emu) == [TASK, TASK, TASK]
    assert compressor.model_dump()["instruction"] == TASK


def test_llamaindex(start_emulator: StartEmulator) -> None:
    emu = start_emulator("vllm")
    postprocessor = RerankPostprocessor(reranker=config(emu), instruction=TASK)
    nodes = [NodeWithScore(node=TextNode(text=t), score=0.0) for t in TEXTS]
    postprocessor.postprocess_nodes(nodes, QueryBundle(QUERY))
    assert sent(emu) == [TASK]


def test_haystack_init_value_run_override_and_round_trip(start_emulator: StartEmulator) -> None:
    emu = start_emulator("vllm")
    ranker = RerankRanker(reranker={"provider": "vllm", "model": "m", "base_url": emu.base_url}, instruction=TASK)
    docs = [HaystackDocument(content=t) for t in TEXTS]
    ranker.run(QUERY, docs)
    ranker.run(QUERY, docs, instruction="another task")
    asyncio.run(ranker.run_async(QUERY, docs))
    assert sent(emu) == [TASK, "another task", TASK]
    assert RerankRanker.from_dict(ranker.to_dict()).instruction == TASK


def test_a_refusal_reaches_the_caller(start_emulator: StartEmulator) -> None:
    emu = start_emulator("cohere")
    compressor = RerankCompressor(reranker=config(emu, "cohere"), instruction=TASK)
    with pytest.raises(UnsupportedInputError, match="cannot follow an instruction"):
        compressor.compress_documents([LangChainDocument(page_content=t) for t in TEXTS], QUERY)
    ranker = RerankRanker(
        reranker={"provider": "cohere", "model": "m", "base_url": emu.base_url}, api_key=Secret.from_token("k")
    )
    with pytest.raises(UnsupportedInputError):
        ranker.run(QUERY, [HaystackDocument(content=t) for t in TEXTS], instruction=TASK)
    assert emu.requests == []
