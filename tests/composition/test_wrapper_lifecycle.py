"""One lifecycle for the three wrappers: `warm_up()`/`awarm_up()` load the model before the first query,
`close()`/`aclose()` and `with`/`async with` release what they built, a changed setting rebuilds the reranker (and
closes the one it replaces), a reranker passed in is never closed, and Haystack's ranker drops duplicate ids as
Haystack's own rankers do."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from haystack import Document as HaystackDocument
from haystack import Pipeline
from haystack.utils import Secret
from langchain_core.documents import Document as LangChainDocument
from llama_index.core.schema import NodeWithScore, TextNode
from pydantic import SecretStr

from haystack_integrations.components.rankers.rerank import RerankRanker
from rerank_core import HTTPReranker, load_reranker
from rerank_langchain import RerankCompressor
from rerank_llamaindex import RerankPostprocessor
from tests.support.emulator import ProviderEmulator

TEXTS = ["Paris is the capital of France.", "Berlin is in Germany.", "France borders Spain."]
QUERY = "capital of france"
KEY = "k"  # what the module's shared emulator accepts


def spec(emulator: ProviderEmulator) -> dict[str, Any]:
    return {"provider": "generic", "model": "m", "base_url": emulator.base_url}


def keyed(reranker: Any, key: object) -> dict[str, Any]:
    """The key goes with a spec; a ready Reranker object already has its own."""
    return {} if isinstance(reranker, HTTPReranker) else {"api_key": key}


def langchain(reranker: Any) -> RerankCompressor:
    return RerankCompressor(reranker=reranker, top_n=1, **keyed(reranker, SecretStr(KEY)))


def llamaindex(reranker: Any) -> RerankPostprocessor:
    return RerankPostprocessor(reranker=reranker, top_n=1, **keyed(reranker, SecretStr(KEY)))


def haystack(reranker: Any) -> RerankRanker:
    return RerankRanker(reranker=reranker, top_k=1, **keyed(reranker, Secret.from_token(KEY)))


def run_once(wrapper: Any) -> str:
    if isinstance(wrapper, RerankCompressor):
        return str(
            wrapper.compress_documents([LangChainDocument(page_content=t) for t in TEXTS], QUERY)[0].page_content
        )
    if isinstance(wrapper, RerankPostprocessor):
        nodes = [NodeWithScore(node=TextNode(text=t)) for t in TEXTS]
        return str(wrapper.postprocess_nodes(nodes, query_str=QUERY)[0].node.get_content())
    return str(wrapper.run(query=QUERY, documents=[HaystackDocument(content=t) for t in TEXTS])["documents"][0].content)


async def arun_once(wrapper: Any) -> str:
    if isinstance(wrapper, RerankCompressor):
        docs = [LangChainDocument(page_content=t) for t in TEXTS]
        return str((await wrapper.acompress_documents(docs, QUERY))[0].page_content)
    if isinstance(wrapper, RerankPostprocessor):
        nodes = [NodeWithScore(node=TextNode(text=t)) for t in TEXTS]
        return str((await wrapper.apostprocess_nodes(nodes, query_str=QUERY))[0].node.get_content())
    out = await wrapper.run_async(query=QUERY, documents=[HaystackDocument(content=t) for t in TEXTS])
    return str(out["documents"][0].content)


WRAPPERS: list[Callable[[Any], Any]] = [langchain, llamaindex, haystack]
NAMES = ["langchain", "llamaindex", "haystack"]


def built(wrapper: Any) -> HTTPReranker:
    core = wrapper._lazy.built
    assert isinstance(core, HTTPReranker)
    return core


LOCAL_WRAPPERS: list[Callable[[str], Any]] = [
    lambda spec: RerankCompressor(reranker=spec, top_n=1),
    lambda spec: RerankPostprocessor(reranker=spec, top_n=1),
    lambda spec: RerankRanker(reranker=spec, top_k=1),
]


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("make", LOCAL_WRAPPERS, ids=NAMES)
async def test_warm_up_loads_the_local_model(
    make: Callable[[str], Any], use_async: bool, tiny_cross_encoder: str, tmp_path: Path
) -> None:
    model = shutil.copytree(tiny_cross_encoder, tmp_path / "model")
    wrapper = make(f"local:{model}")

    if use_async:
        await wrapper.awarm_up()
    else:
        wrapper.warm_up()
    shutil.rmtree(model)  # only a model loaded by warm_up can still answer

    assert (await arun_once(wrapper) if use_async else run_once(wrapper)) in TEXTS
    wrapper.close()


@pytest.mark.parametrize("make", WRAPPERS, ids=NAMES)
def test_with_closes_the_pool_the_wrapper_opened(make: Callable[[Any], Any], emulator: ProviderEmulator) -> None:
    with make(spec(emulator)) as wrapper:
        assert run_once(wrapper) == TEXTS[0]
        core = built(wrapper)
        assert core._pool._sync_lease is not None
    assert core._pool._sync_lease is None  # closed on leaving the block
    assert wrapper._lazy.built is None
    assert run_once(wrapper) == TEXTS[0]  # usable again: it builds anew
    wrapper.close()


@pytest.mark.parametrize("make", WRAPPERS, ids=NAMES)
async def test_async_with_closes_the_loops_clients(make: Callable[[Any], Any], emulator: ProviderEmulator) -> None:
    async with make(spec(emulator)) as wrapper:
        assert await arun_once(wrapper) == TEXTS[0]
        core = built(wrapper)
        assert core._pool._async_leases
    assert not core._pool._async_leases
    assert wrapper._lazy.built is None


@pytest.mark.parametrize("make", WRAPPERS, ids=NAMES)
def test_a_reranker_passed_in_is_the_callers_to_close(make: Callable[[Any], Any], emulator: ProviderEmulator) -> None:
    with load_reranker(spec(emulator), api_key=KEY) as mine:
        assert isinstance(mine, HTTPReranker)
        with make(mine) as wrapper:
            assert run_once(wrapper) == TEXTS[0]
        assert mine._pool._sync_lease is not None  # still open: the wrapper did not own it
        assert mine.rerank(QUERY, TEXTS).results[0].document.text == TEXTS[0]


@pytest.mark.parametrize("make", WRAPPERS, ids=NAMES)
def test_a_changed_reranker_rebuilds_and_closes_the_old_one(
    make: Callable[[Any], Any], start_emulator: Callable[..., ProviderEmulator]
) -> None:
    first, second = start_emulator("generic"), start_emulator("generic")
    with make(spec(first)) as wrapper:
        assert run_once(wrapper) == TEXTS[0]
        old = built(wrapper)
        wrapper.reranker = spec(second)
        assert run_once(wrapper) == TEXTS[0]
        assert built(wrapper) is not old
        assert old._pool._sync_lease is None  # the replaced reranker's pool is closed, not leaked
    assert (first.request_count, second.request_count) == (1, 1)


@pytest.mark.parametrize("make", WRAPPERS, ids=NAMES)
def test_an_unchanged_wrapper_keeps_its_reranker(make: Callable[[Any], Any], emulator: ProviderEmulator) -> None:
    with make(spec(emulator)) as wrapper:
        run_once(wrapper)
        core = built(wrapper)
        run_once(wrapper)
        assert built(wrapper) is core


def test_haystack_drops_duplicate_ids_keeping_the_best_scored(start_emulator: Callable[..., ProviderEmulator]) -> None:
    emulator = start_emulator("generic")
    paris = HaystackDocument(id="p", content=TEXTS[0], score=0.2, meta={"from": "bm25"})
    paris_again = HaystackDocument(id="p", content=TEXTS[0], score=0.9, meta={"from": "dense"})
    berlin = HaystackDocument(id="b", content=TEXTS[1])
    spain = HaystackDocument(id="s", content=TEXTS[2])
    pipeline = Pipeline()
    pipeline.add_component("ranker", RerankRanker(reranker=spec(emulator), api_key=Secret.from_token(KEY), top_k=None))
    out = pipeline.run({"ranker": {"query": QUERY, "documents": [paris, berlin, paris_again, spain]}})
    ranked = out["ranker"]["documents"]
    assert sorted(doc.id for doc in ranked) == ["b", "p", "s"]  # each id once
    assert next(doc for doc in ranked if doc.id == "p").meta["from"] == "dense"  # the higher-scored duplicate
    assert [doc["id"] for doc in emulator.requests[0].body["documents"]] == ["p", "b", "s"]  # sent once each
    assert [paris.score, paris_again.score] == [0.2, 0.9]  # inputs untouched
