"""RerankPostprocessor inside real LlamaIndex query engines, against the loopback emulator and a tiny local
cross-encoder."""

from __future__ import annotations

import asyncio
import copy
import pickle
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.callbacks import CallbackManager, CBEventType, LlamaDebugHandler
from llama_index.core.instrumentation import get_dispatcher  # type: ignore[attr-defined]
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
from llama_index.core.instrumentation.span_handlers import SimpleSpanHandler
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle, TextNode
from pydantic import Field, SecretStr, ValidationError
from tests.support.emulator import ProviderEmulator
from tests.support.wrapper_corpus import QUERY, TEXTS

from rerank_core import ConfigurationError, load_reranker
from rerank_llamaindex import RerankPostprocessor


def make_nodes() -> list[NodeWithScore]:
    return [
        NodeWithScore(
            node=TextNode(
                text=text,
                id_=f"n{i}",
                metadata={"source": f"s{i}", "tags": ["x"]},
                excluded_embed_metadata_keys=["tags"],
            ),
            score=0.1 * i,
        )
        for i, text in enumerate(TEXTS)
    ]


class ListRetriever(BaseRetriever):
    """A retriever that returns fixed nodes: the engine around the postprocessor is real, the search is not."""

    def __init__(self, nodes: list[NodeWithScore]) -> None:
        super().__init__()
        self.nodes = nodes

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return self.nodes


class EventRecorder(BaseEventHandler):
    events: list[BaseEvent] = Field(default_factory=list)

    @classmethod
    def class_name(cls) -> str:
        return "EventRecorder"

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        if isinstance(event, ReRankStartEvent | ReRankEndEvent):
            self.events.append(event)


@pytest.fixture
def recorder() -> Iterator[EventRecorder]:
    handler = EventRecorder()
    root = get_dispatcher()
    root.add_event_handler(handler)
    yield handler
    root.event_handlers.remove(handler)


def ranked(nodes: list[NodeWithScore]) -> list[tuple[str, float | None]]:
    return [(item.node.node_id, item.score) for item in nodes]


def core_ranking(spec: str | dict[str, Any], top_n: int | None) -> list[tuple[str, float | None]]:
    texts = [item.node.get_content(metadata_mode=MetadataMode.EMBED) for item in make_nodes()]
    response = load_reranker(spec).rerank(QUERY, texts, top_n=top_n)
    return [(f"n{result.index}", result.relevance_score) for result in response.results]


def test_query_engine_ranking_matches_core(reranker_spec: str | dict[str, Any]) -> None:
    engine = RetrieverQueryEngine.from_args(
        ListRetriever(make_nodes()), llm=MockLLM(), node_postprocessors=[RerankPostprocessor(reranker=reranker_spec)]
    )

    response = engine.query(QUERY)

    assert ranked(response.source_nodes) == core_ranking(reranker_spec, top_n=2)


async def test_async_query_engine_ranking_matches_core(reranker_spec: str | dict[str, Any]) -> None:
    engine = RetrieverQueryEngine.from_args(
        ListRetriever(make_nodes()),
        llm=MockLLM(),
        node_postprocessors=[RerankPostprocessor(reranker=reranker_spec, top_n=None)],
    )

    response = await engine.aquery(QUERY)

    assert ranked(response.source_nodes) == core_ranking(reranker_spec, top_n=None)


def test_scores_the_embed_content(emulator: ProviderEmulator, emulator_config: dict[str, Any]) -> None:
    RerankPostprocessor(reranker=emulator_config).postprocess_nodes(make_nodes(), query_str=QUERY)

    sent = [doc if isinstance(doc, str) else doc["text"] for doc in emulator.requests[-1].body["documents"]]
    assert sent[1] == "source: s1\n\nParis is the capital of France"  # "tags" is excluded from EMBED


@pytest.mark.parametrize("keep_retrieval_score", [False, True])
def test_outputs_are_new_and_inputs_survive(emulator_config: dict[str, Any], keep_retrieval_score: bool) -> None:
    nodes = make_nodes()
    before = copy.deepcopy(nodes)
    postprocessor = RerankPostprocessor(reranker=emulator_config, top_n=None, keep_retrieval_score=keep_retrieval_score)

    result = postprocessor.postprocess_nodes(nodes, query_bundle=QueryBundle(QUERY))

    assert [item.model_dump() for item in nodes] == [item.model_dump() for item in before]
    assert sorted(item.node.node_id for item in result) == [f"n{i}" for i in range(len(TEXTS))]
    for item in result:
        original = nodes[int(item.node.node_id[1:])]
        assert item is not original
        assert item.node.get_content() == original.node.get_content()
        expected = dict(original.node.metadata)
        if keep_retrieval_score:
            expected["retrieval_score"] = original.score
        assert item.node.metadata == expected


def test_top_n_and_threshold_hold(emulator_config: dict[str, Any]) -> None:
    top2 = RerankPostprocessor(reranker=emulator_config, top_n=2).postprocess_nodes(make_nodes(), query_str=QUERY)
    above = RerankPostprocessor(reranker=emulator_config, top_n=None, score_threshold=0.5).postprocess_nodes(
        make_nodes(), query_str=QUERY
    )

    assert [item.node.node_id for item in top2] == ["n1", "n0"]
    assert [item.node.node_id for item in above] == ["n1", "n0"]  # n4 scores 0.34, the rest 0.01
    assert all((item.score or 0) >= 0.5 for item in above)


async def test_empty_input_keeps_events_balanced(emulator_config: dict[str, Any], recorder: EventRecorder) -> None:
    postprocessor = RerankPostprocessor(reranker=emulator_config)

    assert postprocessor.postprocess_nodes([], query_str=QUERY) == []
    assert await postprocessor.apostprocess_nodes([], query_str=QUERY) == []
    assert [type(event).__name__ for event in recorder.events] == ["ReRankStartEvent", "ReRankEndEvent"] * 2


async def test_events_spans_and_callbacks(emulator_config: dict[str, Any], recorder: EventRecorder) -> None:
    debug = LlamaDebugHandler()
    spans = SimpleSpanHandler()
    get_dispatcher("rerank_llamaindex.postprocessor").add_span_handler(spans)
    postprocessor = RerankPostprocessor(reranker=emulator_config, callback_manager=CallbackManager([debug]))

    try:
        postprocessor.postprocess_nodes(make_nodes(), query_str=QUERY)
        await postprocessor.apostprocess_nodes(make_nodes(), query_str=QUERY)
    finally:
        get_dispatcher("rerank_llamaindex.postprocessor").span_handlers.remove(spans)

    start, end = recorder.events[0], recorder.events[1]
    assert isinstance(start, ReRankStartEvent)
    assert (start.model_name, start.top_n, len(start.nodes)) == ("m", 2, len(TEXTS))
    assert isinstance(end, ReRankEndEvent)
    assert [item.node.node_id for item in end.nodes] == ["n1", "n0"]
    assert [type(event).__name__ for event in recorder.events] == ["ReRankStartEvent", "ReRankEndEvent"] * 2
    assert len(debug.get_event_pairs(CBEventType.RERANKING)) == 2
    span_names = sorted(span.id_.split("-")[0] for span in spans.completed_spans)
    assert span_names == ["RerankPostprocessor._apostprocess_nodes", "RerankPostprocessor._postprocess_nodes"]


def test_errors_keep_events_balanced(emulator_config: dict[str, Any], recorder: EventRecorder) -> None:
    postprocessor = RerankPostprocessor(
        reranker={**emulator_config, "base_url": "http://127.0.0.1:9", "max_retries": 0}
    )

    with pytest.raises(Exception, match="generic"):
        postprocessor.postprocess_nodes(make_nodes(), query_str=QUERY)

    assert [type(event).__name__ for event in recorder.events] == ["ReRankStartEvent", "ReRankEndEvent"]


def test_misspelled_argument_is_rejected(emulator_config: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match="topn") as caught:
        RerankPostprocessor(reranker=emulator_config, topn=2)  # type: ignore[call-arg]
    assert caught.value.hint == "Did you mean top_n=?"


async def test_missing_query_is_a_clear_error(emulator_config: dict[str, Any]) -> None:
    postprocessor = RerankPostprocessor(reranker=emulator_config)

    with pytest.raises(ValueError, match="needs a query"):
        postprocessor.postprocess_nodes(make_nodes())
    with pytest.raises(ValueError, match="needs a query"):
        await postprocessor.apostprocess_nodes(make_nodes())


async def test_async_calls_run_concurrently(start_emulator: Callable[..., ProviderEmulator]) -> None:
    emu = start_emulator("generic", latency=0.5)
    postprocessor = RerankPostprocessor(
        reranker={"provider": "generic", "model": "m", "base_url": emu.base_url, "api_key": "k"}
    )

    started = time.perf_counter()
    first, second = await asyncio.gather(
        postprocessor.apostprocess_nodes(make_nodes(), query_str=QUERY),
        postprocessor.apostprocess_nodes(make_nodes(), query_str="learning search"),
    )
    elapsed = time.perf_counter() - started

    assert elapsed < 0.9, f"two 0.5 s calls took {elapsed:.2f} s: the async path is not concurrent"

    assert emu.peak_in_flight == 2  # both requests were at the server at once
    assert (first[0].node.node_id, second[0].node.node_id) == ("n1", "n3")


def test_to_dict_round_trip_without_secrets(emulator_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    postprocessor = RerankPostprocessor(reranker={**emulator_config, "api_key": "sk-secret-123"}, top_n=1)

    data = postprocessor.to_dict()

    assert "sk-secret-123" not in repr(postprocessor) + postprocessor.to_json()
    assert data == {
        "reranker": {"provider": "generic", "model": "m", "base_url": emulator_config["base_url"]},
        "top_n": 1,
        "score_threshold": None,
        "instruction": None,
        "keep_retrieval_score": False,
        "class_name": "RerankPostprocessor",
    }
    monkeypatch.setenv("RERANK_API_KEY", "k")  # rebuilt, the key comes from the provider's env var
    rebuilt = RerankPostprocessor.from_dict(data)
    assert rebuilt.to_dict() == data
    assert [item.node.node_id for item in rebuilt.postprocess_nodes(make_nodes(), query_str=QUERY)] == ["n1"]


def test_reranker_object_is_used_as_is_and_dumps_provider_and_model(emulator_config: dict[str, Any]) -> None:
    core = load_reranker(emulator_config)
    postprocessor = RerankPostprocessor(reranker=core, top_n=1)

    assert postprocessor.reranker is core
    assert postprocessor.to_dict()["reranker"] == {"provider": "generic", "model": "m"}
    assert [item.node.node_id for item in postprocessor.postprocess_nodes(make_nodes(), query_str=QUERY)] == ["n1"]


def make_engine(postprocessor: RerankPostprocessor, nodes: list[NodeWithScore] | None = None) -> RetrieverQueryEngine:
    return RetrieverQueryEngine.from_args(
        ListRetriever(nodes or make_nodes()), llm=MockLLM(), node_postprocessors=[postprocessor]
    )


async def query(engine: RetrieverQueryEngine, use_async: bool) -> list[NodeWithScore]:
    response = await engine.aquery(QUERY) if use_async else engine.query(QUERY)
    return list(response.source_nodes)


@pytest.mark.parametrize("use_async", [False, True])
async def test_api_key_is_a_secret_and_never_serialized(
    emulator: ProviderEmulator, monkeypatch: pytest.MonkeyPatch, use_async: bool
) -> None:
    monkeypatch.delenv("RERANK_API_KEY", raising=False)
    config = {"provider": "generic", "model": "m", "base_url": emulator.base_url}
    postprocessor = RerankPostprocessor(reranker=config, api_key=SecretStr("k"))

    assert [item.node.node_id for item in await query(make_engine(postprocessor), use_async)] == ["n1", "n0"]
    assert isinstance(postprocessor.api_key, SecretStr)
    assert "api_key" not in postprocessor.to_dict()
    assert "'k'" not in repr(postprocessor) + postprocessor.to_json()


def test_missing_key_is_a_configuration_error(emulator: ProviderEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RERANK_API_KEY", raising=False)
    config = {"provider": "generic", "model": "m", "base_url": emulator.base_url}

    with pytest.raises(ConfigurationError, match="api_key") as raised:
        RerankPostprocessor(reranker=config)

    assert not isinstance(raised.value, ValidationError)
    assert RerankPostprocessor(reranker=config, api_key=SecretStr("k")).postprocess_nodes(make_nodes(), query_str=QUERY)


@pytest.mark.parametrize("use_async", [False, True])
async def test_copies_and_pickles_work_and_rebuild_their_reranker(
    emulator_config: dict[str, Any], use_async: bool
) -> None:
    postprocessor = RerankPostprocessor(reranker=emulator_config)
    postprocessor.postprocess_nodes(make_nodes(), query_str=QUERY)  # the original has a live reranker with a pool

    copies = [pickle.loads(pickle.dumps(postprocessor)), copy.deepcopy(postprocessor)]
    copies.append(postprocessor.model_copy(deep=True))

    for twin in copies:
        assert twin.to_dict() == postprocessor.to_dict()
        assert [item.node.node_id for item in await query(make_engine(twin), use_async)] == ["n1", "n0"]


def test_a_reranker_object_is_shared_by_copies_and_refuses_pickling(emulator_config: dict[str, Any]) -> None:
    core = load_reranker(emulator_config)
    postprocessor = RerankPostprocessor(reranker=core)

    assert copy.deepcopy(postprocessor).reranker is core
    with pytest.raises(TypeError, match="spec string or config dict"):
        pickle.dumps(postprocessor)


@pytest.mark.parametrize("use_async", [False, True])
async def test_assigning_the_reranker_takes_effect(
    emulator_config: dict[str, Any], start_emulator: Callable[..., ProviderEmulator], use_async: bool
) -> None:
    other = start_emulator("generic", api_key="k")
    other_config = {**emulator_config, "base_url": other.base_url}
    postprocessor = RerankPostprocessor(reranker=emulator_config)

    await query(make_engine(postprocessor.model_copy(update={"reranker": other_config})), use_async)
    assert other.request_count == 1
    postprocessor.reranker = other_config
    await query(make_engine(postprocessor), use_async)
    assert other.request_count == 2


@pytest.mark.parametrize("use_async", [False, True])
async def test_changing_returned_metadata_never_changes_the_input(
    emulator_config: dict[str, Any], use_async: bool
) -> None:
    nodes = make_nodes()
    before = [item.model_dump() for item in nodes]
    postprocessor = RerankPostprocessor(reranker=emulator_config, top_n=None, keep_retrieval_score=True)

    for item in await query(make_engine(postprocessor, nodes), use_async):
        item.node.metadata["tags"].append("changed")
        item.node.metadata["source"] = "changed"
    assert [item.model_dump() for item in nodes] == before


@pytest.mark.parametrize("use_async", [False, True])
async def test_top_n_zero_keeps_nothing(
    emulator: ProviderEmulator, emulator_config: dict[str, Any], use_async: bool
) -> None:
    before = emulator.request_count

    assert await query(make_engine(RerankPostprocessor(reranker=emulator_config, top_n=0)), use_async) == []
    assert emulator.request_count == before


@pytest.mark.parametrize("top_n", [-1, 2.5, "3", True])
def test_invalid_top_n_is_rejected(emulator_config: dict[str, Any], top_n: Any) -> None:
    with pytest.raises(ValidationError, match="top_n"):
        RerankPostprocessor(reranker=emulator_config, top_n=top_n)


async def test_events_stay_balanced_without_a_query(emulator_config: dict[str, Any], recorder: EventRecorder) -> None:
    postprocessor = RerankPostprocessor(reranker=emulator_config)

    with pytest.raises(ValueError, match="needs a query"):
        postprocessor.postprocess_nodes(make_nodes())
    with pytest.raises(ValueError, match="needs a query"):
        await postprocessor.apostprocess_nodes(make_nodes())

    assert [type(event).__name__ for event in recorder.events] == ["ReRankStartEvent", "ReRankEndEvent"] * 2


@pytest.mark.parametrize("use_async", [False, True])
async def test_call_info_and_winning_window_reach_llamaindex(
    start_emulator: Callable[..., ProviderEmulator], recorder: EventRecorder, use_async: bool
) -> None:
    emu = start_emulator("cohere")
    config = {"provider": "cohere", "model": "m", "base_url": emu.base_url, "api_key": "k"}
    chunked = {**config, "long_documents": "chunk", "max_tokens_per_document": 8, "chunk_overlap": 0}
    long_text = "Filler words about nothing in particular here. " * 3 + "Paris is the capital of France."
    nodes = [*make_nodes(), NodeWithScore(node=TextNode(text=long_text, id_="long"), score=0.0)]

    result = await query(make_engine(RerankPostprocessor(reranker=chunked, top_n=None), nodes), use_async)

    end = recorder.events[-1]
    assert isinstance(end, ReRankEndEvent)
    assert (end.tags["provider"], end.tags["model"]) == ("cohere", "m")
    assert end.tags["usage"]["search_units"] == emu.request_count
    assert end.tags["request_ids"] == ["emulated-0001"] * emu.request_count
    long = next(item.node for item in result if item.node.node_id == "long")
    window = long.metadata["rerank_window"]
    assert long.get_content(metadata_mode=MetadataMode.NONE) == long_text
    assert long_text[window["start"] : window["end"]] == window["text"]
    assert "France" in window["text"]
    assert "rerank_window" not in long.get_content(metadata_mode=MetadataMode.LLM)  # kept out of the prompt
