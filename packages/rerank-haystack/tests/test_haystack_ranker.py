"""RerankRanker inside real Haystack pipelines, against the loopback emulator and a tiny local cross-encoder."""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Callable
from typing import Any

import pytest
from haystack import Document, Pipeline
from haystack.components.retrievers.in_memory import InMemoryBM25Retriever
from haystack.document_stores.in_memory import InMemoryDocumentStore
from haystack.utils import Secret
from tests.support.emulator import ProviderEmulator

from haystack_integrations.components.rankers.rerank import RerankRanker
from rerank_core import ConfigurationError, load_reranker
from rerank_haystack import RerankRanker as AliasedRanker

QUERY = "capital of france"
TEXTS = [
    "Berlin is the capital of Germany",
    "Paris is the capital of France",
    "The river in Paris",
    "Deep learning for search",
    "France borders Spain",
]


def make_documents() -> list[Document]:
    return [
        Document(content=text, id=f"d{i}", meta={"source": f"s{i}", "tags": ["x"]}, score=0.5)
        for i, text in enumerate(TEXTS)
    ]


def make_pipeline(ranker: RerankRanker) -> Pipeline:
    store = InMemoryDocumentStore()
    store.write_documents(make_documents())
    pipeline = Pipeline()
    pipeline.add_component("retriever", InMemoryBM25Retriever(document_store=store, top_k=10))
    pipeline.add_component("ranker", ranker)
    pipeline.connect("retriever.documents", "ranker.documents")
    return pipeline


def pipeline_inputs(query: str = QUERY) -> dict[str, Any]:
    return {"retriever": {"query": query}, "ranker": {"query": query}}


@pytest.fixture
def emulator_config(emulator: ProviderEmulator, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    # A Haystack config holds no plaintext key (it would land in the serialized pipeline): the key comes from env.
    monkeypatch.setenv("RERANK_API_KEY", "k")
    return {"provider": "generic", "model": "m", "base_url": emulator.base_url}


def ranked(documents: list[Document]) -> list[tuple[str, float | None]]:
    return [(doc.id, doc.score) for doc in documents]


def core_ranking(spec: str | dict[str, Any], documents: list[Document]) -> list[tuple[str, float | None]]:
    response = load_reranker(spec).rerank(QUERY, [doc.content or "" for doc in documents], top_n=3)
    return [(documents[result.index].id, result.relevance_score) for result in response.results]


@pytest.mark.parametrize("use_async", [False, True])
async def test_pipeline_ranking_matches_core(reranker_spec: str | dict[str, Any], use_async: bool) -> None:
    pipeline = make_pipeline(RerankRanker(reranker_spec, top_k=3))

    if use_async:
        outputs = await pipeline.run_async(pipeline_inputs(), include_outputs_from={"retriever"})
    else:
        outputs = pipeline.run(pipeline_inputs(), include_outputs_from={"retriever"})

    retrieved = outputs["retriever"]["documents"]
    assert len(retrieved) >= 3
    assert ranked(outputs["ranker"]["documents"]) == core_ranking(reranker_spec, retrieved)


async def test_yaml_round_trip_keeps_the_key_an_env_var(
    emulator: ProviderEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_RERANK_KEY", "k")
    ranker = RerankRanker(
        {"provider": "generic", "model": "m", "base_url": emulator.base_url},
        api_key=Secret.from_env_var("MY_RERANK_KEY"),
        top_k=2,
        meta_fields_to_embed=["source"],
    )
    pipeline = make_pipeline(ranker)
    expected = pipeline.run(pipeline_inputs())["ranker"]["documents"]

    yaml = pipeline.dumps()
    loaded = Pipeline.loads(yaml)  # no allow-listing: the component lives under haystack_integrations

    assert "MY_RERANK_KEY" in yaml
    assert "'k'" not in yaml
    assert ": k\n" not in yaml
    assert "haystack_integrations.components.rankers.rerank.ranker.RerankRanker" in yaml
    assert ranked(loaded.run(pipeline_inputs())["ranker"]["documents"]) == ranked(expected)
    assert ranked((await loaded.run_async(pipeline_inputs()))["ranker"]["documents"]) == ranked(expected)
    assert [doc.id for doc in expected] == ["d1", "d0"]


def test_to_dict_from_dict(emulator_config: dict[str, Any]) -> None:
    ranker = RerankRanker(
        emulator_config, api_key=Secret.from_env_var(["A_KEY", "B_KEY"], strict=False), score_threshold=0.2
    )

    data = ranker.to_dict()

    assert data == {
        "type": "haystack_integrations.components.rankers.rerank.ranker.RerankRanker",
        "init_parameters": {
            "reranker": emulator_config,
            "api_key": {"type": "env_var", "env_vars": ["A_KEY", "B_KEY"], "strict": False},
            "top_k": 10,
            "score_threshold": 0.2,
            "meta_fields_to_embed": [],
            "embedding_separator": "\n",
        },
    }
    assert RerankRanker.from_dict(copy.deepcopy(data)).to_dict() == data


def test_plaintext_key_in_config_is_rejected(emulator_config: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match="api_key=Secret"):
        RerankRanker({**emulator_config, "api_key": "sk-secret-123"})


def test_outputs_are_scored_copies_and_inputs_survive(emulator_config: dict[str, Any]) -> None:
    documents = make_documents()
    before = copy.deepcopy(documents)

    result = RerankRanker(emulator_config, top_k=None).run(QUERY, documents)["documents"]

    assert documents == before
    assert sorted(doc.id for doc in result) == [f"d{i}" for i in range(len(TEXTS))]
    for doc in result:
        original = documents[int(doc.id[1:])]
        assert doc is not original
        assert (doc.content, doc.meta) == (original.content, original.meta)
        assert doc.score != original.score


def test_top_k_and_threshold_hold_and_run_arguments_override(emulator_config: dict[str, Any]) -> None:
    ranker = RerankRanker(emulator_config, top_k=2)

    assert [doc.id for doc in ranker.run(QUERY, make_documents())["documents"]] == ["d1", "d0"]
    assert [doc.id for doc in ranker.run(QUERY, make_documents(), top_k=1)["documents"]] == ["d1"]
    above = ranker.run(QUERY, make_documents(), top_k=5, score_threshold=0.2)["documents"]
    assert [doc.id for doc in above] == ["d1", "d0", "d4"]  # the rest score 0.01
    assert all((doc.score or 0) >= 0.2 for doc in above)


async def test_empty_input_and_missing_content(emulator: ProviderEmulator, emulator_config: dict[str, Any]) -> None:
    ranker = RerankRanker(emulator_config)

    assert ranker.run(QUERY, []) == {"documents": []}
    assert await ranker.run_async(QUERY, []) == {"documents": []}
    result = ranker.run(QUERY, [Document(content=None, id="blob"), Document(content=TEXTS[1], id="paris")])
    assert [doc.id for doc in result["documents"]] == ["paris", "blob"]


def test_meta_fields_are_scored_with_the_content(emulator: ProviderEmulator, emulator_config: dict[str, Any]) -> None:
    ranker = RerankRanker(emulator_config, meta_fields_to_embed=["source", "missing"], embedding_separator=" | ")

    ranker.run(QUERY, make_documents())

    sent = [doc if isinstance(doc, str) else doc["text"] for doc in emulator.requests[-1].body["documents"]]
    assert sent[1] == "s1 | Paris is the capital of France"


def test_warm_up_is_idempotent_and_close_releases(emulator_config: dict[str, Any]) -> None:
    ranker = RerankRanker(emulator_config)

    ranker.warm_up()
    built = ranker._core
    ranker.warm_up()

    assert built is not None
    assert ranker._core is built
    ranker.close()
    assert ranker._core is None
    assert [doc.id for doc in ranker.run(QUERY, make_documents(), top_k=1)["documents"]] == ["d1"]  # rebuilds


def test_reranker_object_is_used_as_is_and_never_closed(emulator_config: dict[str, Any]) -> None:
    core = load_reranker(emulator_config)
    ranker = AliasedRanker(core, top_k=1)

    assert ranker.to_dict()["init_parameters"]["reranker"] == {"provider": "generic", "model": "m"}
    assert [doc.id for doc in ranker.run(QUERY, make_documents())["documents"]] == ["d1"]
    ranker.close()
    assert ranker._core is core


async def test_async_runs_are_concurrent(start_emulator: Callable[..., ProviderEmulator]) -> None:
    emu = start_emulator("generic", latency=0.5)
    ranker = RerankRanker(
        {"provider": "generic", "model": "m", "base_url": emu.base_url}, api_key=Secret.from_token("k")
    )

    started = time.perf_counter()
    first, second = await asyncio.gather(
        ranker.run_async(QUERY, make_documents()), ranker.run_async("learning search", make_documents())
    )
    elapsed = time.perf_counter() - started

    assert elapsed < 0.9, f"two 0.5 s calls took {elapsed:.2f} s: the async path is not concurrent"

    assert emu.peak_in_flight == 2  # both requests were at the server at once
    assert (first["documents"][0].id, second["documents"][0].id) == ("d1", "d3")
