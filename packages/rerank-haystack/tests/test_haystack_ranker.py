"""RerankRanker inside real Haystack pipelines, against the loopback emulator and a tiny local cross-encoder."""

from __future__ import annotations

import asyncio
import copy
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from haystack import Document, Pipeline
from haystack.components.retrievers.in_memory import InMemoryBM25Retriever
from haystack.document_stores.in_memory import InMemoryDocumentStore
from haystack.utils import ComponentDevice, Secret
from tests.support.emulator import ProviderEmulator
from tests.support.wrapper_corpus import QUERY, TEXTS

from haystack_integrations.components.rankers.rerank import RerankRanker
from rerank_core import ConfigurationError, InvalidInputError, Reranker, load_reranker
from rerank_core import Document as CoreDocument
from rerank_core.base import Scores
from rerank_core.local.torch_engine import TorchCrossEncoder
from rerank_haystack import RerankRanker as AliasedRanker


def make_documents() -> list[Document]:
    return [
        Document(content=text, id=f"d{i}", meta={"source": f"s{i}", "tags": ["x"]}, score=0.5)
        for i, text in enumerate(TEXTS)
    ]


def make_pipeline(ranker: RerankRanker, extra: list[Document] | None = None) -> Pipeline:
    store = InMemoryDocumentStore()
    store.write_documents(make_documents() + (extra or []))
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
            "scale_score": True,
            "query_prefix": "",
            "query_suffix": "",
            "document_prefix": "",
            "document_suffix": "",
            "meta_fields_to_embed": [],
            "embedding_separator": "\n",
            "batch_size": None,
            "device": None,
            "model_kwargs": {},
            "instruction": None,
        },
    }
    assert RerankRanker.from_dict(copy.deepcopy(data)).to_dict() == data


def test_every_parameter_survives_yaml(tiny_cross_encoder: str) -> None:
    ranker = RerankRanker(
        f"local:{tiny_cross_encoder}",
        top_k=2,
        score_threshold=0.1,
        scale_score=False,
        query_prefix="query: ",
        query_suffix=" ?",
        document_prefix="passage: ",
        document_suffix=" .",
        meta_fields_to_embed=["source"],
        embedding_separator=" | ",
        batch_size=2,
        device=ComponentDevice.from_str("cpu"),
        model_kwargs={"activation": "none", "max_length": 64},
    )
    pipeline = make_pipeline(ranker)

    loaded = Pipeline.loads(pipeline.dumps())
    loaded_ranker = loaded.get_component("ranker")

    assert isinstance(loaded_ranker, RerankRanker)
    assert loaded_ranker.to_dict() == ranker.to_dict()
    assert loaded_ranker.device == ComponentDevice.from_str("cpu")
    assert RerankRanker.from_dict(ranker.to_dict()).to_dict() == ranker.to_dict()
    local = loaded_ranker._core()
    assert isinstance(local, TorchCrossEncoder)
    assert (local.batch_size, local.device, local.activation) == (2, "cpu", "none")


@pytest.mark.parametrize("top_k", [-1, 2.5, "3", True])
def test_invalid_top_k_fails_at_init_naming_top_k(emulator_config: dict[str, Any], top_k: Any) -> None:
    with pytest.raises(ConfigurationError, match="top_k"):
        RerankRanker(emulator_config, top_k=top_k)
    with pytest.raises(InvalidInputError, match="top_k"):  # a bad per-call value is bad input
        RerankRanker(emulator_config).run(QUERY, make_documents(), top_k=top_k)


@pytest.mark.parametrize("use_async", [False, True])
async def test_top_k_zero_returns_no_documents(
    emulator: ProviderEmulator, emulator_config: dict[str, Any], use_async: bool
) -> None:
    pipeline = make_pipeline(RerankRanker(emulator_config, top_k=0))
    before = emulator.request_count

    outputs = await pipeline.run_async(pipeline_inputs()) if use_async else pipeline.run(pipeline_inputs())

    assert outputs["ranker"]["documents"] == []
    assert {item["reason"] for item in outputs["ranker"]["meta"]["dropped"]} == {"top_n"}
    assert len(outputs["ranker"]["meta"]["dropped"]) >= 3
    assert emulator.request_count == before  # nothing to score, so nothing is sent


@pytest.mark.parametrize("use_async", [False, True])
async def test_scale_score_squashes_logits_at_init_and_per_run(tiny_cross_encoder: str, use_async: bool) -> None:
    spec = f"local:{tiny_cross_encoder}"
    probabilities = load_reranker(spec).rerank(QUERY, TEXTS)  # the default activation is a sigmoid
    logits = load_reranker(spec, activation="none").rerank(QUERY, TEXTS)
    raw = RerankRanker(spec, top_k=None, scale_score=False, model_kwargs={"activation": "none"})
    pipeline = make_pipeline(raw)

    async def run(**ranker_args: Any) -> list[Document]:
        data = {"retriever": {"query": QUERY}, "ranker": {"query": QUERY, **ranker_args}}
        outputs = await pipeline.run_async(data) if use_async else pipeline.run(data)
        documents: list[Document] = outputs["ranker"]["documents"]
        return documents

    def by_id(documents: list[Document]) -> dict[str, float | None]:
        return {doc.id: doc.score for doc in documents}

    expected_logits = {f"d{r.index}": r.relevance_score for r in logits.results}
    expected_probabilities = {f"d{r.index}": r.relevance_score for r in probabilities.results}
    unscaled = by_id(await run())
    scaled = by_id(await run(scale_score=True))
    assert unscaled == pytest.approx({key: expected_logits[key] for key in unscaled})
    assert scaled == pytest.approx({key: expected_probabilities[key] for key in scaled}, abs=1e-5)
    # The threshold applies to the scores the caller sees: scaled ones here.
    cut = sorted(score or 0.0 for score in scaled.values())[len(scaled) // 2]
    assert all((score or 0) >= cut for score in by_id(await run(scale_score=True, score_threshold=cut)).values())
    assert RerankRanker(spec, model_kwargs={"activation": "none"}).run(QUERY, make_documents())["documents"][
        0
    ].score == pytest.approx(max(expected_probabilities.values()), abs=1e-5)  # scale_score=True by default


def test_prefixes_and_suffixes_reach_the_backend(emulator: ProviderEmulator, emulator_config: dict[str, Any]) -> None:
    ranker = RerankRanker(
        emulator_config,
        query_prefix="query: ",
        query_suffix=" ?",
        document_prefix="passage: ",
        document_suffix=" .",
        meta_fields_to_embed=["source"],
    )

    ranker.run(QUERY, make_documents())

    body = emulator.requests[-1].body
    sent = [doc if isinstance(doc, str) else doc["text"] for doc in body["documents"]]
    assert body["query"] == f"query: {QUERY} ?"
    assert sent[1] == "passage: s1\nParis is the capital of France ."


def test_batch_size_is_documents_per_request_for_a_hosted_provider(
    start_emulator: Callable[..., ProviderEmulator], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RERANK_API_KEY", "k")
    emu = start_emulator("generic")
    ranker = RerankRanker({"provider": "generic", "model": "m", "base_url": emu.base_url}, batch_size=2, top_k=2)

    result = ranker.run(QUERY, make_documents())

    assert sorted(len(request.body["documents"]) for request in emu.requests) == [1, 2, 2]  # batches may overlap
    assert [doc.id for doc in result["documents"]] == ["d1", "d0"]


def test_device_is_for_the_local_model_only(emulator_config: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match="device"):
        RerankRanker(emulator_config, device=ComponentDevice.from_str("cpu"))


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

    assert ranker.run(QUERY, [])["documents"] == []
    assert (await ranker.run_async(QUERY, []))["documents"] == []
    result = ranker.run(QUERY, [Document(content=None, id="blob"), Document(content=TEXTS[1], id="paris")])
    assert [doc.id for doc in result["documents"]] == ["paris", "blob"]


def test_meta_fields_are_scored_with_the_content(emulator: ProviderEmulator, emulator_config: dict[str, Any]) -> None:
    ranker = RerankRanker(
        emulator_config, meta_fields_to_embed=["source", "missing", "page", "draft", "none"], embedding_separator=" | "
    )
    documents = [replace(doc, meta={**doc.meta, "page": 0, "draft": False, "none": None}) for doc in make_documents()]

    ranker.run(QUERY, documents)

    sent = [doc if isinstance(doc, str) else doc["text"] for doc in emulator.requests[-1].body["documents"]]
    assert sent[1] == "s1 | 0 | False | Paris is the capital of France"  # 0 and False are values; None is not


@pytest.mark.parametrize("use_async", [False, True])
async def test_changing_returned_meta_never_changes_the_input(emulator_config: dict[str, Any], use_async: bool) -> None:
    pipeline = make_pipeline(RerankRanker(emulator_config, top_k=None))
    documents = make_documents()
    data = {"ranker": {"query": QUERY, "documents": documents}}
    pipeline.remove_component("retriever")

    outputs = await pipeline.run_async(data) if use_async else pipeline.run(data)
    direct = RerankRanker(emulator_config, top_k=None).run(QUERY, documents)

    for result in [*outputs["ranker"]["documents"], *direct["documents"]]:
        result.meta["tags"].append("changed")
        result.meta["source"] = "changed"
    assert documents == make_documents()


@pytest.mark.parametrize("use_async", [False, True])
async def test_meta_output_and_winning_window(
    start_emulator: Callable[..., ProviderEmulator], monkeypatch: pytest.MonkeyPatch, use_async: bool
) -> None:
    monkeypatch.setenv("COHERE_API_KEY", "k")
    emu = start_emulator("cohere")
    config = {"provider": "cohere", "model": "m", "base_url": emu.base_url}
    ranker = RerankRanker(
        {**config, "long_documents": "chunk", "max_tokens_per_document": 8, "chunk_overlap": 0}, top_k=2
    )
    long_text = "Filler words about nothing in particular here. " * 3 + "Paris is the capital of France."
    pipeline = make_pipeline(ranker, extra=[Document(content=long_text, id="long")])

    outputs = await pipeline.run_async(pipeline_inputs()) if use_async else pipeline.run(pipeline_inputs())

    documents, meta = outputs["ranker"]["documents"], outputs["ranker"]["meta"]
    assert (meta["provider"], meta["model"]) == ("cohere", "m")
    assert meta["usage"]["search_units"] == emu.request_count
    assert meta["request_ids"] == ["emulated-0001"] * emu.request_count
    long = next(doc for doc in documents if doc.id == "long")
    window = long.meta["rerank_window"]
    assert long_text[window["start"] : window["end"]] == window["text"]
    assert "France" in window["text"]


def test_warm_up_is_idempotent_and_close_releases(emulator_config: dict[str, Any]) -> None:
    ranker = RerankRanker(emulator_config)

    ranker.warm_up()
    built = ranker._lazy.built if ranker._lazy else None
    ranker.warm_up()

    assert built is not None
    assert ranker._lazy is not None
    assert ranker._lazy.built is built
    ranker.close()
    assert ranker._lazy.built is None
    assert [doc.id for doc in ranker.run(QUERY, make_documents(), top_k=1)["documents"]] == ["d1"]  # rebuilds


@pytest.mark.parametrize("use_async", [False, True])
async def test_warm_up_loads_the_local_model(tiny_cross_encoder: str, tmp_path: Path, use_async: bool) -> None:
    model = shutil.copytree(tiny_cross_encoder, tmp_path / "model")
    pipeline = make_pipeline(RerankRanker(f"local:{model}", top_k=2))

    if use_async:
        await pipeline.warm_up_async()
    else:
        pipeline.warm_up()
    shutil.rmtree(model)  # only a model loaded by warm_up can still answer

    outputs = await pipeline.run_async(pipeline_inputs()) if use_async else pipeline.run(pipeline_inputs())
    assert len(outputs["ranker"]["documents"]) == 2


class Recording(Reranker):
    """Records the threads its `warm_up` ran on."""

    def __init__(self) -> None:
        self.warm_threads: list[int] = []

    def warm_up(self) -> None:
        self.warm_threads.append(threading.get_ident())

    def _score(self, query: str, documents: list[CoreDocument], top_n: int | None) -> Scores:
        return Scores({i: 1.0 / (i + 1) for i in range(len(documents))}, provider="recording", model=None)

    async def _ascore(self, query: str, documents: list[CoreDocument], top_n: int | None) -> Scores:
        return self._score(query, documents, top_n)


@pytest.mark.parametrize("use_async", [False, True])
async def test_warm_up_reaches_every_backend_once_and_async_off_the_loop(use_async: bool) -> None:
    core = Recording()
    pipeline = make_pipeline(RerankRanker(core))

    for _ in range(2):  # pipelines warm up before every run
        outputs = await pipeline.run_async(pipeline_inputs()) if use_async else pipeline.run(pipeline_inputs())
        assert outputs["ranker"]["documents"]

    assert len(core.warm_threads) == 1
    assert (core.warm_threads[0] != threading.get_ident()) is use_async  # a model load must not block the loop


def test_reranker_object_is_used_as_is_and_never_closed(emulator_config: dict[str, Any]) -> None:
    core = load_reranker(emulator_config)
    ranker = AliasedRanker(core, top_k=1)

    assert ranker.to_dict()["init_parameters"]["reranker"] == {"provider": "generic", "model": "m"}
    assert [doc.id for doc in ranker.run(QUERY, make_documents())["documents"]] == ["d1"]
    ranker.close()
    assert ranker._core() is core
    with pytest.raises(ConfigurationError, match="batch_size"):
        AliasedRanker(core, batch_size=2)


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


@pytest.mark.parametrize("use_async", [False, True])
async def test_changed_settings_take_effect(
    emulator_config: dict[str, Any], start_emulator: Callable[..., ProviderEmulator], use_async: bool
) -> None:
    other = start_emulator("generic", api_key="k")
    ranker = RerankRanker(emulator_config, top_k=2)
    pipeline = make_pipeline(ranker)
    await pipeline.run_async(pipeline_inputs()) if use_async else pipeline.run(pipeline_inputs())

    ranker.reranker = {**emulator_config, "base_url": other.base_url}
    ranker.batch_size = 2
    await pipeline.run_async(pipeline_inputs()) if use_async else pipeline.run(pipeline_inputs())

    assert other.request_count >= 2  # the new endpoint, in batches of 2
    assert max(len(request.body["documents"]) for request in other.requests) == 2
