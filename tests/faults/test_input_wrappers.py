"""Bad caller input through the core and the three wrappers, inside real framework pipelines, sync and async.

Each case is either a typed `InvalidInputError` naming the parameter and what to do, or the right answer with
every document accounted for, its id and metadata intact and the caller's input unchanged. Metadata is the
hostile part: values that cannot be deep-copied (a lock, a socket), structures that contain themselves, keys
that are tuples or of mixed types.
"""

from __future__ import annotations

import asyncio
import math
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from haystack import Document as HaystackDocument
from haystack import Pipeline
from haystack.components.retrievers.in_memory import InMemoryBM25Retriever
from haystack.document_stores.in_memory import InMemoryDocumentStore
from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LangChainDocument
from langchain_core.retrievers import BaseRetriever as LangChainRetriever
from llama_index.core.base.base_retriever import BaseRetriever as LlamaRetriever
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from haystack_integrations.components.rankers.rerank import RerankRanker
from rerank_core import Document, InvalidInputError, UnsupportedInputError, load_reranker
from rerank_langchain import RerankCompressor
from rerank_llamaindex import RerankPostprocessor
from tests.support.emulator import ProviderEmulator

QUERY = "capital of france"
TEXTS = ["berlin is in germany", "paris is the capital of france", "the capital city"]
MODES = ["sync", "async"]
ZERO_WIDTH = ["\u200b", "\u200b\u200c\u200d", " \ufeff\u2060 ", "\u00ad\u200e", "\u3164"]


@pytest.fixture(scope="module")
def emu() -> Iterator[ProviderEmulator]:
    with ProviderEmulator("generic") as emulator:
        yield emulator


@pytest.fixture
def config(emu: ProviderEmulator, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("RERANK_API_KEY", "k")
    return {"provider": "generic", "model": "m", "base_url": emu.base_url, "max_retries": 0}


def run(mode: str, sync: Callable[[], Any], asynchronous: Callable[[], Any]) -> Any:
    return sync() if mode == "sync" else asyncio.run(asynchronous())


class HostileMetadata:
    """Metadata values that `copy.deepcopy` and `json.dumps` cannot handle, and the checks on their copies."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.cycle: dict[str, Any] = {"name": "loop"}
        self.cycle["self"] = self.cycle
        self.nested: list[Any] = [1, {"inner": [2, 3]}]

    def metadata(self, string_keys: bool = False) -> dict[Any, Any]:
        """The hostile values; `string_keys` for frameworks that refuse other keys themselves (LlamaIndex)."""
        values: dict[Any, Any] = {"lock": self.lock, "sock": self.sock, "cycle": self.cycle, "nested": self.nested}
        values.update({"tuple": "t", "7": "int key"} if string_keys else {("tuple", "key"): "t", 7: "int key"})
        return {**values, "plain": "p"}

    def check_copy(self, copied: dict[Any, Any], string_keys: bool = False) -> None:
        assert copied["lock"] is self.lock
        assert copied["sock"] is self.sock
        assert copied["cycle"] is not self.cycle
        assert copied["cycle"]["self"] is copied["cycle"]
        assert copied["cycle"]["name"] == "loop"
        assert copied["nested"] == self.nested
        assert copied["nested"] is not self.nested
        assert copied["nested"][1] is not self.nested[1]  # deep
        keys = ("tuple", "7") if string_keys else (("tuple", "key"), 7)
        assert copied[keys[0]] == "t"
        assert copied[keys[1]] == "int key"
        assert copied["plain"] == "p"

    def check_untouched(self, given: dict[Any, Any], string_keys: bool = False) -> None:
        assert given == self.metadata(string_keys)
        assert self.cycle["self"] is self.cycle
        assert self.nested == [1, {"inner": [2, 3]}]

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def hostile() -> Iterator[HostileMetadata]:
    values = HostileMetadata()
    yield values
    values.close()


# -- the core ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("query", ZERO_WIDTH)
def test_a_query_of_invisible_characters_is_blank(
    config: dict[str, Any], emu: ProviderEmulator, mode: str, query: str
) -> None:
    reranker = load_reranker(config)
    before = emu.request_count
    with pytest.raises(InvalidInputError, match="query is empty or blank"):
        run(mode, lambda: reranker.rerank(query, TEXTS), lambda: reranker.arerank(query, TEXTS))
    assert emu.request_count == before


@pytest.mark.parametrize("mode", MODES)
def test_a_generator_of_documents_is_refused_with_what_to_do(config: dict[str, Any], mode: str) -> None:
    reranker = load_reranker(config)
    with pytest.raises(InvalidInputError, match=r"not generator.*Pass list\(documents\)"):
        run(
            mode,
            lambda: reranker.rerank(QUERY, (text for text in TEXTS)),  # type: ignore[arg-type]
            lambda: reranker.arerank(QUERY, (text for text in TEXTS)),  # type: ignore[arg-type]
        )


@pytest.mark.parametrize("mode", MODES)
def test_ids_keep_their_type(config: dict[str, Any], mode: str) -> None:
    import numpy

    reranker = load_reranker(config)
    docs: list[Any] = [
        {"text": TEXTS[0], "id": 0},
        {"text": TEXTS[1], "id": 12345678901234567890},
        Document(TEXTS[2], id=numpy.int64(7)),
        {"text": "a string id", "id": "7"},
    ]
    response = run(mode, lambda: reranker.rerank(QUERY, docs), lambda: reranker.arerank(QUERY, docs))
    ids = {result.index: result.document.id for result in response.results}
    assert ids == {0: 0, 1: 12345678901234567890, 2: 7, 3: "7"}
    assert [type(ids[i]) for i in range(4)] == [int, int, int, str]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("options", [{"send_metadata": True}, {"send_metadata": ["keys"]}])
def test_metadata_with_tuple_and_mixed_keys_is_sent_with_string_keys(
    emu: ProviderEmulator, config: dict[str, Any], mode: str, options: dict[str, Any]
) -> None:
    keys = {("a", 1): "tuple", 2: "int", "b": "str", None: "none"}
    docs: list[Any] = [{"text": TEXTS[1], "id": "d", "metadata": {"keys": keys, "lock": threading.Lock()}}, TEXTS[0]]
    reranker = load_reranker({**config, "options": options, "cache": True})  # the cache keys on the sent metadata
    response = run(mode, lambda: reranker.rerank(QUERY, docs), lambda: reranker.arerank(QUERY, docs))
    assert response.results[0].document.metadata["keys"] is keys
    sent = emu.requests[-1].body["documents"][0]["metadata"]["keys"]
    assert sent == {"('a', 1)": "tuple", "2": "int", "b": "str", "null": "none"}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cache", [False, True])
def test_metadata_that_contains_itself_cannot_be_sent_and_says_where(
    emu: ProviderEmulator, config: dict[str, Any], hostile: HostileMetadata, mode: str, cache: bool
) -> None:
    reranker = load_reranker({**config, "options": {"send_metadata": ["cycle"]}, "cache": cache})
    docs = [{"text": TEXTS[0], "metadata": hostile.metadata()}]
    before = emu.request_count
    with pytest.raises(UnsupportedInputError, match=r"\['cycle'\]\['self'\] contains itself"):
        run(mode, lambda: reranker.rerank(QUERY, docs), lambda: reranker.arerank(QUERY, docs))
    assert emu.request_count == before


@pytest.mark.parametrize("mode", MODES)
def test_metadata_nested_past_the_recursion_limit_is_refused_typed(config: dict[str, Any], mode: str) -> None:
    deep: list[Any] = []
    for _ in range(5000):
        deep = [deep]
    reranker = load_reranker({**config, "options": {"send_metadata": True}})
    docs = [{"text": TEXTS[0], "metadata": {"deep": deep, 1: "mixed keys force the careful encoding"}}]
    with pytest.raises(UnsupportedInputError, match="nested deeper than"):
        run(mode, lambda: reranker.rerank(QUERY, docs), lambda: reranker.arerank(QUERY, docs))


def test_a_bad_document_is_a_typed_error_not_a_pydantic_one() -> None:
    with pytest.raises(InvalidInputError, match="metadata"):
        Document("x", metadata=["not", "a", "dict"])
    with pytest.raises(InvalidInputError, match="text"):
        Document(5)  # type: ignore[arg-type]


# -- LangChain: a ContextualCompressionRetriever ------------------------------------------------------------------


class ListRetriever(LangChainRetriever):
    documents: Any

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> Any:
        return self.documents

    async def _aget_relevant_documents(self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun) -> Any:
        return self.documents


def langchain_retrieve(compressor: RerankCompressor, documents: Any, mode: str, query: Any = QUERY) -> Any:
    retriever = ContextualCompressionRetriever(
        base_compressor=compressor, base_retriever=ListRetriever(documents=documents)
    )
    return run(mode, lambda: retriever.invoke(query), lambda: retriever.ainvoke(query))


@pytest.mark.parametrize("mode", MODES)
def test_langchain_keeps_uncopyable_and_cyclic_metadata(
    config: dict[str, Any], hostile: HostileMetadata, mode: str
) -> None:
    documents = [LangChainDocument(text, id=f"d{i}", metadata=hostile.metadata()) for i, text in enumerate(TEXTS)]
    result = langchain_retrieve(RerankCompressor(reranker=config, top_n=None), documents, mode)
    assert sorted(doc.id for doc in result) == ["d0", "d1", "d2"]
    for doc in result:
        hostile.check_copy(doc.metadata)
        assert isinstance(doc.metadata["relevance_score"], float)
    for doc in documents:
        hostile.check_untouched(doc.metadata)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("documents", "match"),
    [
        (None, "documents must be a list of LangChain Documents, not NoneType"),
        ([LangChainDocument("ok"), None], r"documents\[1\] has type NoneType; expected Document"),
    ],
)
def test_langchain_bad_documents_are_typed_errors(
    config: dict[str, Any], mode: str, documents: Any, match: str
) -> None:
    compressor = RerankCompressor(reranker=config)
    with pytest.raises(InvalidInputError, match=match):
        run(
            mode,
            lambda: compressor.compress_documents(documents, QUERY),
            lambda: compressor.acompress_documents(documents, QUERY),
        )


@pytest.mark.parametrize("mode", MODES)
def test_langchain_generator_and_threshold(config: dict[str, Any], mode: str) -> None:
    compressor = RerankCompressor(reranker=config)
    with pytest.raises(InvalidInputError, match=r"Pass list\(documents\)"):
        run(
            mode,
            lambda: compressor.compress_documents((LangChainDocument(t) for t in TEXTS), QUERY),  # type: ignore[arg-type]
            lambda: compressor.acompress_documents((LangChainDocument(t) for t in TEXTS), QUERY),  # type: ignore[arg-type]
        )
    compressor.score_threshold = math.nan  # assigned after construction: checked on the call
    with pytest.raises(InvalidInputError, match="score_threshold must be finite"):
        langchain_retrieve(compressor, [LangChainDocument(t) for t in TEXTS], mode)
    with pytest.raises(InvalidInputError, match="query is empty or blank"):
        langchain_retrieve(RerankCompressor(reranker=config), [LangChainDocument(t) for t in TEXTS], mode, "\u200b")


def test_langchain_refuses_a_nan_threshold_at_construction(config: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="score_threshold must be finite"):
        RerankCompressor(reranker=config, score_threshold=math.nan)


# -- LlamaIndex: a RetrieverQueryEngine -----------------------------------------------------------------------------


class NodesRetriever(LlamaRetriever):
    def __init__(self, nodes: Any) -> None:
        super().__init__()
        self.nodes = nodes

    def _retrieve(self, query_bundle: QueryBundle) -> Any:
        return self.nodes


def llama_query(postprocessor: RerankPostprocessor, nodes: Any, mode: str, query: str = QUERY) -> list[NodeWithScore]:
    engine = RetrieverQueryEngine.from_args(NodesRetriever(nodes), llm=MockLLM(), node_postprocessors=[postprocessor])
    response = run(mode, lambda: engine.query(query), lambda: engine.aquery(query))
    return list(response.source_nodes)


@pytest.mark.parametrize("mode", MODES)
def test_llamaindex_keeps_uncopyable_and_cyclic_metadata(
    config: dict[str, Any], hostile: HostileMetadata, mode: str
) -> None:
    nodes = [
        NodeWithScore(node=TextNode(text=text, id_=f"n{i}", metadata=hostile.metadata(string_keys=True)), score=0.5)
        for i, text in enumerate(TEXTS)
    ]
    result = llama_query(RerankPostprocessor(reranker=config, top_n=None), nodes, mode)
    assert sorted(item.node.node_id for item in result) == ["n0", "n1", "n2"]
    for item in result:
        hostile.check_copy(item.node.metadata, string_keys=True)
    for item in nodes:
        hostile.check_untouched(item.node.metadata, string_keys=True)


@pytest.mark.parametrize("mode", MODES)
def test_llamaindex_bad_input_is_typed(config: dict[str, Any], mode: str) -> None:
    postprocessor = RerankPostprocessor(reranker=config)
    nodes = [NodeWithScore(node=TextNode(text=text), score=0.5) for text in TEXTS]
    with pytest.raises(InvalidInputError, match="query is empty or blank"):
        llama_query(postprocessor, nodes, mode, "\u200b\u200b")
    with pytest.raises(InvalidInputError, match="nodes must be a list of NodeWithScore, not NoneType"):
        run(
            mode,
            lambda: postprocessor.postprocess_nodes(None, query_str=QUERY),  # type: ignore[arg-type]
            lambda: postprocessor.apostprocess_nodes(None, query_str=QUERY),  # type: ignore[arg-type]
        )
    with pytest.raises(InvalidInputError, match=r"nodes\[0\] has type TextNode; expected NodeWithScore"):
        run(
            mode,
            lambda: postprocessor.postprocess_nodes([TextNode(text="x")], query_str=QUERY),  # type: ignore[list-item]
            lambda: postprocessor.apostprocess_nodes([TextNode(text="x")], query_str=QUERY),  # type: ignore[list-item]
        )
    postprocessor.score_threshold = math.nan
    with pytest.raises(InvalidInputError, match="score_threshold must be finite"):
        llama_query(postprocessor, nodes, mode)


# -- Haystack: a Pipeline ---------------------------------------------------------------------------------------------


def haystack_pipeline(ranker: RerankRanker, documents: list[HaystackDocument]) -> Pipeline:
    store = InMemoryDocumentStore()
    store.write_documents(documents)
    pipeline = Pipeline()
    pipeline.add_component("retriever", InMemoryBM25Retriever(document_store=store, top_k=10))
    pipeline.add_component("ranker", ranker)
    pipeline.connect("retriever.documents", "ranker.documents")
    return pipeline


def haystack_run(pipeline: Pipeline, mode: str, query: Any = QUERY, **ranker: Any) -> dict[str, Any]:
    inputs = {"retriever": {"query": QUERY}, "ranker": {"query": query, **ranker}}
    outputs: dict[str, Any] = run(mode, lambda: pipeline.run(inputs), lambda: pipeline.run_async(inputs))
    ranker_outputs: dict[str, Any] = outputs["ranker"]
    return ranker_outputs


def haystack_documents() -> list[HaystackDocument]:
    return [HaystackDocument(content=text, id=f"h{i}", meta={"n": i}) for i, text in enumerate(TEXTS)]


@pytest.mark.parametrize("mode", MODES)
def test_haystack_nan_threshold_is_refused_not_an_empty_answer(config: dict[str, Any], mode: str) -> None:
    with pytest.raises(ValueError, match="score_threshold must be finite"):
        RerankRanker(config, score_threshold=math.nan)
    pipeline = haystack_pipeline(RerankRanker(config, top_k=None), haystack_documents())
    with pytest.raises(Exception, match="score_threshold must be finite") as caught:
        haystack_run(pipeline, mode, score_threshold=math.nan)
    assert isinstance(caught.value, InvalidInputError) or isinstance(caught.value.__cause__, InvalidInputError)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("query", [None, "\u200b", 5])
def test_haystack_a_missing_query_is_refused_not_scored_as_text(
    config: dict[str, Any], emu: ProviderEmulator, mode: str, query: Any
) -> None:
    ranker = RerankRanker(config, query_prefix="query: ")
    before = emu.request_count
    with pytest.raises(InvalidInputError, match=r"query must be a str|query is empty or blank"):
        run(
            mode,
            lambda: ranker.run(query=query, documents=haystack_documents()),
            lambda: ranker.run_async(query=query, documents=haystack_documents()),
        )
    assert emu.request_count == before


@pytest.mark.parametrize("mode", MODES)
def test_haystack_keeps_uncopyable_and_cyclic_metadata(
    config: dict[str, Any], hostile: HostileMetadata, mode: str
) -> None:
    pipeline = Pipeline()  # documents straight in: a document store would copy or refuse such metadata itself
    pipeline.add_component("ranker", RerankRanker(config, top_k=None))
    documents = [HaystackDocument(content=text, id=f"h{i}", meta=hostile.metadata()) for i, text in enumerate(TEXTS)]
    inputs = {"ranker": {"query": QUERY, "documents": documents}}
    result = run(mode, lambda: pipeline.run(inputs), lambda: pipeline.run_async(inputs))["ranker"]
    assert sorted(doc.id for doc in result["documents"]) == ["h0", "h1", "h2"]
    for doc in result["documents"]:
        hostile.check_copy(doc.meta)
    for doc in documents:
        hostile.check_untouched(doc.meta)


@pytest.mark.parametrize("mode", MODES)
def test_haystack_bad_documents_are_typed(config: dict[str, Any], mode: str) -> None:
    ranker = RerankRanker(config)
    cases: list[tuple[Any, str]] = [
        (None, "documents must be a list of Haystack Documents, not NoneType"),
        ((doc for doc in haystack_documents()), r"Pass list\(documents\)"),
        ([HaystackDocument(content="x"), "text"], r"documents\[1\] has type str; expected Document"),
    ]
    for documents, match in cases:

        def sync(documents: Any = documents) -> Any:
            return ranker.run(query=QUERY, documents=documents)

        async def asynchronous(documents: Any = documents) -> Any:
            return await ranker.run_async(query=QUERY, documents=documents)

        with pytest.raises(InvalidInputError, match=match):
            run(mode, sync, asynchronous)
