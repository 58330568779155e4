"""The names first-party rerankers use work, or are corrected: `model=` is `reranker=` in all three wrappers, and a
`top_k`/`top_n` mix-up or a typo names the parameter the wrapper takes, inside real framework pipelines."""

from __future__ import annotations

from typing import Any

import pytest
from haystack import Document as HaystackDocument
from haystack import Pipeline
from haystack.utils import Secret
from langchain_core.documents import Document as LangChainDocument

from haystack_integrations.components.rankers.rerank import RerankRanker
from rerank_core import ConfigurationError
from rerank_langchain import RerankCompressor
from rerank_llamaindex import RerankPostprocessor
from tests.support.emulator import ProviderEmulator

TEXTS = ["Paris is the capital of France.", "Berlin is in Germany.", "France borders Spain."]
QUERY = "capital of france"


def spec(emulator: ProviderEmulator) -> dict[str, Any]:
    return {"provider": "generic", "model": "m", "base_url": emulator.base_url}


def test_model_is_reranker_in_a_langchain_compressor(emulator: ProviderEmulator) -> None:
    # `model=` is not in pydantic's typed signature, which type checkers read; it works at run time.
    arguments: dict[str, Any] = {"model": spec(emulator), "api_key": "k", "top_n": 2}
    compressor = RerankCompressor(**arguments)
    kept = compressor.compress_documents([LangChainDocument(page_content=t) for t in TEXTS], QUERY)
    assert kept[0].page_content == TEXTS[0]
    assert compressor.reranker == spec(emulator)


def test_model_is_reranker_in_a_llamaindex_postprocessor(emulator: ProviderEmulator) -> None:
    from llama_index.core.schema import NodeWithScore, TextNode

    arguments: dict[str, Any] = {"model": spec(emulator), "api_key": "k", "top_n": 1}
    postprocessor = RerankPostprocessor(**arguments)
    kept = postprocessor.postprocess_nodes([NodeWithScore(node=TextNode(text=t)) for t in TEXTS], query_str=QUERY)
    assert [n.node.get_content() for n in kept] == [TEXTS[0]]


def test_model_is_reranker_in_a_haystack_pipeline(emulator: ProviderEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIRST_PARTY_NAMES_KEY", "k")
    ranker = RerankRanker(model=spec(emulator), api_key=Secret.from_env_var("FIRST_PARTY_NAMES_KEY"), top_k=1)
    pipeline = Pipeline()
    pipeline.add_component("ranker", ranker)
    out = pipeline.run({"ranker": {"query": QUERY, "documents": [HaystackDocument(content=t) for t in TEXTS]}})
    assert [d.content for d in out["ranker"]["documents"]] == [TEXTS[0]]
    assert pipeline.to_dict()["components"]["ranker"]["init_parameters"]["reranker"] == spec(emulator)


@pytest.mark.parametrize(
    ("wrapper", "wrong", "right"),
    [
        (RerankCompressor, "top_k", "top_n"),
        (RerankPostprocessor, "top_k", "top_n"),
        (RerankRanker, "top_n", "top_k"),
        (RerankCompressor, "scor_threshold", "score_threshold"),
        (RerankRanker, "scale_scores", "scale_score"),
    ],
)
def test_a_first_party_name_or_a_typo_names_the_right_parameter(wrapper: Any, wrong: str, right: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        wrapper(reranker="local", **{wrong: 3})
    assert f"no parameter {wrong}=" in str(caught.value)
    assert caught.value.hint == f"Did you mean {right}=?"


@pytest.mark.parametrize("wrapper", [RerankCompressor, RerankPostprocessor, RerankRanker])
def test_reranker_and_model_together_are_refused(wrapper: Any) -> None:
    with pytest.raises(ConfigurationError, match="both reranker= and model="):
        wrapper(reranker="local", model="local")
