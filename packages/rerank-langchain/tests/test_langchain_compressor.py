"""RerankCompressor inside real LangChain pipelines, against the loopback emulator and a tiny local cross-encoder."""

from __future__ import annotations

import asyncio
import copy
import pickle
import time
from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest
from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    BaseCallbackHandler,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableConfig, RunnablePassthrough
from pydantic import SecretStr, ValidationError
from tests.support.emulator import ProviderEmulator
from tests.support.wrapper_corpus import QUERY, TEXTS

from rerank_core import ConfigurationError, load_reranker
from rerank_langchain import RerankCompressor


def make_documents() -> list[Document]:
    return [Document(text, id=f"d{i}", metadata={"source": f"s{i}", "tags": ["x"]}) for i, text in enumerate(TEXTS)]


class ListRetriever(BaseRetriever):
    """A retriever that returns a fixed list: the pipeline around the compressor is real, the search is not."""

    documents: list[Document]

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        return self.documents

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun
    ) -> list[Document]:
        return self.documents


class RunRecorder(BaseCallbackHandler):
    def __init__(self) -> None:
        self.chains: list[tuple[str | None, UUID | None]] = []
        self.retrievers: dict[UUID, str] = {}

    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: dict[str, Any],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        self.chains.append((kwargs.get("name"), parent_run_id))

    def on_retriever_start(
        self,
        serialized: dict[str, Any] | None,
        query: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        self.retrievers[run_id] = kwargs.get("name") or ""


def ranked(documents: list[Document]) -> list[tuple[str | None, float]]:
    return [(doc.id, doc.metadata["relevance_score"]) for doc in documents]


def test_ranking_in_retriever_matches_core(reranker_spec: str | dict[str, Any]) -> None:
    core = load_reranker(reranker_spec).rerank(QUERY, TEXTS, top_n=3)
    retriever = ContextualCompressionRetriever(
        base_compressor=RerankCompressor(reranker=reranker_spec, top_n=3),
        base_retriever=ListRetriever(documents=make_documents()),
    )

    result = retriever.invoke(QUERY)

    assert ranked(result) == [(f"d{r.index}", r.relevance_score) for r in core.results]


async def test_async_ranking_in_retriever_matches_core(reranker_spec: str | dict[str, Any]) -> None:
    core = await load_reranker(reranker_spec).arerank(QUERY, TEXTS)
    retriever = ContextualCompressionRetriever(
        base_compressor=RerankCompressor(reranker=reranker_spec, top_n=None),
        base_retriever=ListRetriever(documents=make_documents()),
    )

    result = await retriever.ainvoke(QUERY)

    assert ranked(result) == [(f"d{r.index}", r.relevance_score) for r in core.results]


def test_outputs_are_scored_copies_and_inputs_survive(emulator_config: dict[str, Any]) -> None:
    documents = make_documents()
    before = copy.deepcopy(documents)

    result = RerankCompressor(reranker=emulator_config, top_n=None).compress_documents(documents, QUERY)

    assert documents == before
    assert sorted(doc.id or "" for doc in result) == [f"d{i}" for i in range(len(TEXTS))]
    for doc in result:
        original = documents[int((doc.id or "")[1:])]
        assert doc is not original
        assert doc.page_content == original.page_content
        assert doc.metadata == {**original.metadata, "relevance_score": doc.metadata["relevance_score"]}


def test_top_n_and_threshold_hold(emulator_config: dict[str, Any]) -> None:
    documents = make_documents()
    top2 = RerankCompressor(reranker=emulator_config, top_n=2).compress_documents(documents, QUERY)
    above = RerankCompressor(reranker=emulator_config, top_n=None, score_threshold=0.5).compress_documents(
        documents, QUERY
    )

    assert [doc.id for doc in top2] == ["d1", "d0"]
    assert [doc.id for doc in above] == ["d1", "d0"]  # d4 scores 0.34, the rest 0.01
    assert all(doc.metadata["relevance_score"] >= 0.5 for doc in above)


async def test_empty_input(emulator_config: dict[str, Any]) -> None:
    compressor = RerankCompressor(reranker=emulator_config)

    assert compressor.compress_documents([], QUERY) == []
    assert await compressor.acompress_documents([], QUERY) == []


async def test_async_calls_run_concurrently(start_emulator: Callable[..., ProviderEmulator]) -> None:
    emu = start_emulator("generic", latency=0.5)
    compressor = RerankCompressor(
        reranker={"provider": "generic", "model": "m", "base_url": emu.base_url, "api_key": "k"}
    )

    started = time.perf_counter()
    first, second = await asyncio.gather(
        compressor.acompress_documents(make_documents(), QUERY),
        compressor.acompress_documents(make_documents(), "learning search"),
    )
    elapsed = time.perf_counter() - started

    assert elapsed < 0.9, f"two 0.5 s calls took {elapsed:.2f} s: the async path is not concurrent"

    assert emu.peak_in_flight == 2  # both requests were at the server at once
    assert (first[0].id, second[0].id) == ("d1", "d3")


@pytest.mark.parametrize("use_async", [False, True])
async def test_rerank_is_a_child_run_of_the_retriever(emulator_config: dict[str, Any], use_async: bool) -> None:
    recorder = RunRecorder()
    retriever = ContextualCompressionRetriever(
        base_compressor=RerankCompressor(reranker=emulator_config),
        base_retriever=ListRetriever(documents=make_documents()),
    )
    config: RunnableConfig = {"callbacks": [recorder]}

    if use_async:
        await retriever.ainvoke(QUERY, config=config)
    else:
        retriever.invoke(QUERY, config=config)

    assert len(recorder.chains) == 1
    name, parent = recorder.chains[0]
    assert name == "RerankCompressor"
    assert parent is not None
    assert recorder.retrievers[parent] == "ContextualCompressionRetriever"


def test_works_in_an_lcel_chain(emulator_config: dict[str, Any]) -> None:
    retriever = ContextualCompressionRetriever(
        base_compressor=RerankCompressor(reranker=emulator_config, top_n=2),
        base_retriever=ListRetriever(documents=make_documents()),
    )
    prompt = ChatPromptTemplate.from_template("Context:\n{context}\n\nQuestion: {question}")

    def join(documents: list[Document]) -> str:
        return "\n".join(doc.page_content for doc in documents)

    chain = {"context": retriever | join, "question": RunnablePassthrough()} | prompt

    message = chain.invoke(QUERY).to_messages()[0]

    assert message.content == f"Context:\n{TEXTS[1]}\n{TEXTS[0]}\n\nQuestion: {QUERY}"


def test_misspelled_argument_is_rejected(emulator_config: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match="topn") as caught:
        RerankCompressor(reranker=emulator_config, topn=2)  # type: ignore[call-arg]
    assert caught.value.hint == "Did you mean top_n=?"


def test_serialization_never_holds_the_key(emulator_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    compressor = RerankCompressor(reranker={**emulator_config, "api_key": "sk-secret-123"}, top_n=2)
    dumped = compressor.model_dump()

    assert "sk-secret-123" not in repr(compressor) + repr(dumped) + compressor.model_dump_json()
    assert dumped == {
        "reranker": {"provider": "generic", "model": "m", "base_url": emulator_config["base_url"]},
        "top_n": 2,
        "score_threshold": None,
        "instruction": None,
    }
    # Rebuilt from the dump, the key comes from the provider's env var.
    monkeypatch.setenv("RERANK_API_KEY", "k")
    rebuilt = RerankCompressor(**dumped)
    assert [doc.id for doc in rebuilt.compress_documents(make_documents(), QUERY)] == ["d1", "d0"]


def test_reranker_object_is_used_as_is_and_dumps_provider_and_model(emulator_config: dict[str, Any]) -> None:
    core = load_reranker(emulator_config)
    compressor = RerankCompressor(reranker=core, top_n=1)

    assert compressor.reranker is core
    assert compressor.model_dump()["reranker"] == {"provider": "generic", "model": "m"}
    assert [doc.id for doc in compressor.compress_documents(make_documents(), QUERY)] == ["d1"]


def make_retriever(compressor: RerankCompressor, documents: list[Document] | None = None) -> Any:
    return ContextualCompressionRetriever(
        base_compressor=compressor, base_retriever=ListRetriever(documents=documents or make_documents())
    )


async def retrieve(retriever: Any, use_async: bool, config: RunnableConfig | None = None) -> list[Document]:
    result: list[Document] = await retriever.ainvoke(QUERY, config) if use_async else retriever.invoke(QUERY, config)
    return result


@pytest.mark.parametrize("use_async", [False, True])
async def test_api_key_is_a_secret_and_never_serialized(
    emulator: ProviderEmulator, monkeypatch: pytest.MonkeyPatch, use_async: bool
) -> None:
    monkeypatch.delenv("RERANK_API_KEY", raising=False)
    config = {"provider": "generic", "model": "m", "base_url": emulator.base_url}
    compressor = RerankCompressor(reranker=config, api_key=SecretStr("k"), top_n=2)

    assert [doc.id for doc in await retrieve(make_retriever(compressor), use_async)] == ["d1", "d0"]
    assert isinstance(compressor.api_key, SecretStr)
    assert "api_key" not in compressor.model_dump()
    assert "'k'" not in repr(compressor) + compressor.model_dump_json()


def test_missing_key_is_a_configuration_error(emulator: ProviderEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RERANK_API_KEY", raising=False)
    config = {"provider": "generic", "model": "m", "base_url": emulator.base_url}

    with pytest.raises(ConfigurationError, match="api_key") as raised:
        RerankCompressor(reranker=config)

    assert not isinstance(raised.value, ValidationError)
    assert RerankCompressor(reranker=config, api_key=SecretStr("k")).compress_documents(
        make_documents(), QUERY
    )  # as it says


async def test_rerank_returns_indices_and_scores_like_cohere_rerank(emulator_config: dict[str, Any]) -> None:
    compressor = RerankCompressor(reranker=emulator_config, top_n=2)
    core = load_reranker(emulator_config).rerank(QUERY, TEXTS)
    expected = [{"index": r.index, "relevance_score": r.relevance_score} for r in core.results]

    assert compressor.rerank(make_documents(), QUERY) == expected[:2]  # top_n=-1: the compressor's top_n
    assert compressor.rerank(TEXTS, QUERY, top_n=None) == expected
    assert await compressor.arerank([{"text": text} for text in TEXTS], QUERY, top_n=1) == expected[:1]
    assert compressor.rerank([], QUERY) == []


@pytest.mark.parametrize("use_async", [False, True])
async def test_copies_and_pickles_work_and_rebuild_their_reranker(
    emulator_config: dict[str, Any], use_async: bool
) -> None:
    compressor = RerankCompressor(reranker=emulator_config, top_n=2)
    compressor.compress_documents(make_documents(), QUERY)  # the original has a live reranker with a pool

    copies = [
        pickle.loads(pickle.dumps(compressor)),
        copy.deepcopy(compressor),
        compressor.model_copy(deep=True),
        copy.copy(compressor),
    ]

    for twin in copies:
        assert twin.model_dump() == compressor.model_dump()
        assert [doc.id for doc in await retrieve(make_retriever(twin), use_async)] == ["d1", "d0"]


def test_a_reranker_object_is_shared_by_copies_and_refuses_pickling(emulator_config: dict[str, Any]) -> None:
    core = load_reranker(emulator_config)
    compressor = RerankCompressor(reranker=core)

    assert copy.deepcopy(compressor).reranker is core
    assert compressor.model_copy(deep=True).reranker is core
    with pytest.raises(TypeError, match="spec string or config dict"):
        pickle.dumps(compressor)


@pytest.mark.parametrize("use_async", [False, True])
async def test_assigning_the_reranker_takes_effect(
    emulator_config: dict[str, Any], start_emulator: Callable[..., ProviderEmulator], use_async: bool
) -> None:
    other = start_emulator("generic", api_key="k")
    other_config = {**emulator_config, "base_url": other.base_url}
    compressor = RerankCompressor(reranker=emulator_config)

    updated = compressor.model_copy(update={"reranker": other_config})
    await retrieve(make_retriever(updated), use_async)
    assert other.request_count == 1
    await retrieve(make_retriever(compressor), use_async)  # the original still uses its own
    assert other.request_count == 1

    compressor.reranker = other_config
    await retrieve(make_retriever(compressor), use_async)
    assert other.request_count == 2


@pytest.mark.parametrize("use_async", [False, True])
async def test_changing_returned_metadata_never_changes_the_input(
    emulator_config: dict[str, Any], use_async: bool
) -> None:
    documents = make_documents()
    result = await retrieve(
        make_retriever(RerankCompressor(reranker=emulator_config, top_n=None), documents), use_async
    )

    for doc in result:
        doc.metadata["tags"].append("changed")
    assert documents == make_documents()


@pytest.mark.parametrize("use_async", [False, True])
async def test_top_n_zero_keeps_nothing(
    emulator: ProviderEmulator, emulator_config: dict[str, Any], use_async: bool
) -> None:
    before = emulator.request_count

    assert await retrieve(make_retriever(RerankCompressor(reranker=emulator_config, top_n=0)), use_async) == []
    assert emulator.request_count == before


@pytest.mark.parametrize("top_n", [-1, 2.5, "3", True])
def test_invalid_top_n_is_rejected(emulator_config: dict[str, Any], top_n: Any) -> None:
    with pytest.raises(ValidationError, match="top_n"):
        RerankCompressor(reranker=emulator_config, top_n=top_n)


class EventRecorder(BaseCallbackHandler):
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def on_custom_event(self, name: str, data: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.events.append((name, data))


@pytest.mark.parametrize("use_async", [False, True])
async def test_call_info_and_winning_window_reach_langchain(
    start_emulator: Callable[..., ProviderEmulator], use_async: bool
) -> None:
    emu = start_emulator("cohere")
    config = {"provider": "cohere", "model": "m", "base_url": emu.base_url, "api_key": "k"}
    chunked = {**config, "long_documents": "chunk", "max_tokens_per_document": 8, "chunk_overlap": 0}
    long_text = "Filler words about nothing in particular here. " * 3 + "Paris is the capital of France."
    documents = [*make_documents(), Document(long_text, id="long")]
    recorder = EventRecorder()

    result = await retrieve(
        make_retriever(RerankCompressor(reranker=chunked, top_n=None), documents), use_async, {"callbacks": [recorder]}
    )

    [(name, info)] = recorder.events
    assert (name, info["provider"], info["model"]) == ("rerank_response", "cohere", "m")
    assert info["usage"]["search_units"] == emu.request_count
    assert info["request_ids"] == ["emulated-0001"] * emu.request_count
    long = next(doc for doc in result if doc.id == "long")
    window = long.metadata["rerank_window"]
    assert long_text[window["start"] : window["end"]] == window["text"]
    assert "France" in window["text"]
