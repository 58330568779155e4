"""The Cohere-shaped long tail: SiliconFlow (Cohere v1 fields, `meta` usage), OpenRouter (the model is required, usage
at the top level) and ZeroEntropy (`/v1/models/rerank`, a closed `latency` option), through `load_reranker`, the
environment, the CLI and the wrappers."""

from __future__ import annotations

import json

import pytest
from tests.dialects.test_end_to_end import KEY, QUERY
from tests.support.emulator import Fault
from tests.support.fixtures import StartEmulator

from rerank_core import ConfigurationError, ResponseFormatError, load_reranker
from rerank_core.dialects import get_dialect

DOCS = ["blue sky", "red apple", "apple pie red", "red car", "apple tree"]


def test_siliconflow_sends_cohere_v1_fields_and_reads_meta_usage(start_emulator: StartEmulator) -> None:
    emu = start_emulator("siliconflow", api_key=KEY)
    options = {"max_chunks_per_doc": 4, "overlap_tokens": 16}
    with load_reranker("siliconflow", base_url=emu.base_url, api_key=KEY, options=options) as reranker:
        response = reranker.rerank(QUERY, DOCS, top_n=2)
    body = emu.requests[0].body
    assert body == {
        "model": "BAAI/bge-reranker-v2-m3",
        "query": QUERY,
        "documents": DOCS,
        "return_documents": False,
        "top_n": 2,
        "max_chunks_per_doc": 4,
        "overlap_tokens": 16,
    }
    assert [x.index for x in response.results] == [2, 1]
    assert response.usage.search_units == 1
    assert response.usage.prompt_tokens == sum(len(text.split()) for text in DOCS)
    assert response.request_ids == ["emulated-0001"]


def test_siliconflow_mainland_host_is_a_base_url() -> None:
    assert get_dialect("siliconflow").url("https://api.siliconflow.cn") == "https://api.siliconflow.cn/v1/rerank"


def test_openrouter_needs_a_model_and_reads_top_level_usage(
    start_emulator: StartEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigurationError, match="needs a model"):
        load_reranker("openrouter", api_key=KEY)
    monkeypatch.setenv("OPENROUTER_API_KEY", KEY)
    emu = start_emulator("openrouter", api_key=KEY)
    with load_reranker("openrouter:cohere/rerank-v3.5", base_url=emu.base_url + "/api") as reranker:
        response = reranker.rerank(QUERY, DOCS, top_n=3)
    assert emu.requests[0].path == "/api/v1/rerank"
    assert emu.requests[0].body == {"model": "cohere/rerank-v3.5", "query": QUERY, "documents": DOCS, "top_n": 3}
    assert [x.index for x in response.results] == [2, 1, 3]
    assert [x.document.text for x in response.results] == [DOCS[2], DOCS[1], DOCS[3]]
    assert response.model == "cohere/rerank-v3.5"
    assert response.usage.search_units == 1
    assert response.usage.total_tokens == sum(len(text.split()) for text in DOCS)
    assert response.request_ids == ["gen-rerank-emulated"]


def test_zeroentropy_default_model_latency_and_usage(
    start_emulator: StartEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZEROENTROPY_API_KEY", KEY)
    emu = start_emulator("zeroentropy", api_key=KEY)
    with load_reranker("zeroentropy", base_url=emu.base_url, options={"latency": "fast"}) as reranker:
        response = reranker.rerank(QUERY, DOCS)
    assert emu.requests[0].path == "/v1/models/rerank"
    assert emu.requests[0].body == {"model": "zerank-2", "query": QUERY, "documents": DOCS, "latency": "fast"}
    assert sorted(x.index for x in response.results) == list(range(len(DOCS)))
    assert response.usage.total_tokens == sum(len(text.split()) for text in DOCS)
    with pytest.raises(ConfigurationError, match="latency"):
        load_reranker("zeroentropy", api_key=KEY, options={"latency": "instant"})


@pytest.mark.parametrize("provider", ["siliconflow", "openrouter", "zeroentropy"])
def test_an_answer_with_an_index_out_of_range_is_a_response_format_error(
    start_emulator: StartEmulator, provider: str
) -> None:
    def out_of_range(payload: dict[str, object]) -> dict[str, object]:
        payload["results"] = [{"index": 99, "relevance_score": 0.5}]
        return payload

    emu = start_emulator(provider, api_key=KEY)
    emu.fail_next(Fault(mutate=out_of_range))
    with (
        load_reranker(f"{provider}:m", base_url=emu.base_url, api_key=KEY) as reranker,
        pytest.raises(ResponseFormatError) as caught,
    ):
        reranker.rerank(QUERY, DOCS)
    assert caught.value.provider == provider
    assert KEY not in str(caught.value)


ENV_KEYS = {
    "siliconflow": "SILICONFLOW_API_KEY",
    "openrouter": "OPENROUTER_API_KEY",
    "zeroentropy": "ZEROENTROPY_API_KEY",
}


@pytest.mark.parametrize("provider", sorted(ENV_KEYS))
def test_the_cli_reranks_through_each_with_the_key_from_its_env_var(
    start_emulator: StartEmulator, provider: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.cli.helpers import run

    emu = start_emulator(provider, api_key=KEY)
    args = ["--provider", f"{provider}:m", "--base-url", emu.base_url, "--top-n", "2", "--format", "json"]
    monkeypatch.setenv(ENV_KEYS[provider], KEY)
    done = run(QUERY, "-", *args, stdin="\n".join(DOCS) + "\n")
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert [row["index"] for row in payload["results"]] == [2, 1]
    assert payload["provider"] == provider
    assert KEY not in done.stdout + done.stderr


@pytest.mark.parametrize("provider", sorted(ENV_KEYS))
def test_the_three_wrappers_rerank_through_each(
    start_emulator: StartEmulator, provider: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from haystack import Document as HaystackDocument
    from langchain_core.documents import Document as LangChainDocument
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    from rerank_haystack import RerankRanker
    from rerank_langchain import RerankCompressor
    from rerank_llamaindex import RerankPostprocessor

    emu = start_emulator(provider, api_key=KEY)
    monkeypatch.setenv(ENV_KEYS[provider], KEY)  # a plaintext key would end up in a serialized pipeline
    config = {"provider": provider, "model": "m", "base_url": emu.base_url}
    with RerankCompressor(reranker=config, top_n=2) as compressor:
        ranked = compressor.compress_documents([LangChainDocument(text) for text in DOCS], QUERY)
    assert [doc.page_content for doc in ranked] == [DOCS[2], DOCS[1]]
    with RerankPostprocessor(reranker=config, top_n=2) as postprocessor:
        nodes = [NodeWithScore(node=TextNode(text=text)) for text in DOCS]
        kept = postprocessor.postprocess_nodes(nodes, QueryBundle(QUERY))
    assert [node.node.get_content() for node in kept] == [DOCS[2], DOCS[1]]
    with RerankRanker(reranker=config, top_k=2) as ranker:
        out = ranker.run(query=QUERY, documents=[HaystackDocument(content=text) for text in DOCS])
    assert [doc.content for doc in out["documents"]] == [DOCS[2], DOCS[1]]


def test_the_zeroentropy_wire_equals_the_official_client(start_emulator: StartEmulator) -> None:
    zeroentropy = pytest.importorskip("zeroentropy")
    emu = start_emulator("zeroentropy", api_key=KEY)
    with load_reranker("zeroentropy:zerank-2", base_url=emu.base_url, api_key=KEY) as reranker:
        ours = reranker.rerank(QUERY, DOCS, top_n=3)
    client = zeroentropy.ZeroEntropy(api_key=KEY, base_url=emu.base_url + "/v1", max_retries=0)
    theirs = client.models.rerank(model="zerank-2", query=QUERY, documents=DOCS, top_n=3)
    ours_request, sdk_request = emu.requests
    assert ours_request.path == sdk_request.path == "/v1/models/rerank"
    assert ours_request.body == sdk_request.body
    assert ours_request.headers["authorization"] == sdk_request.headers["authorization"]
    assert [(r.index, r.relevance_score) for r in ours.results] == [
        (r.index, r.relevance_score) for r in theirs.results
    ]
