"""Azure AI Foundry (Cohere shape, both key headers) and DeepInfra (model in the path, bare score list) quirks."""

from __future__ import annotations

import math
from typing import Any

import pytest
from tests.dialects.test_end_to_end import KEY, QUERY
from tests.support.emulator import Fault
from tests.support.fixtures import StartEmulator

from rerank_core import ConfigurationError, HTTPReranker, ResponseFormatError, load_reranker
from rerank_core.dialects import get_dialect

DOCS = ["blue sky", "red apple", "apple pie red", "red car", "apple tree"]


def test_azure_sends_the_key_in_both_headers_azure_documents(start_emulator: StartEmulator) -> None:
    emu = start_emulator("azure", api_key=KEY)
    with load_reranker("azure:Cohere-rerank-v4.0-pro", base_url=emu.base_url + "/providers/cohere", api_key=KEY) as r:
        response = r.rerank(QUERY, DOCS, top_n=2)
    request = emu.requests[0]
    assert request.path == "/providers/cohere/v2/rerank"
    assert request.headers["api-key"] == KEY
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.body["model"] == "Cohere-rerank-v4.0-pro"
    assert [x.index for x in response.results] == [2, 1]
    assert response.usage.search_units == 1
    assert response.score_kind == "probability"


def test_azure_reads_its_key_from_azure_ai_api_key(
    start_emulator: StartEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_AI_API_KEY", KEY)
    emu = start_emulator("azure", api_key=KEY)
    with load_reranker("azure:Cohere-rerank-v3.5", base_url=emu.base_url + "/v1/rerank") as reranker:
        assert len(reranker.rerank(QUERY, DOCS).results) == 5
    assert emu.requests[0].path == "/v1/rerank"  # a serverless deployment's full endpoint, as given


def test_azure_needs_its_deployments_endpoint_and_model() -> None:
    with pytest.raises(ConfigurationError, match="no default base_url"):
        load_reranker("azure:Cohere-rerank-v3.5", api_key=KEY)
    with pytest.raises(ConfigurationError, match="needs a model"):
        load_reranker("azure", base_url="https://r.services.ai.azure.com", api_key=KEY)


def test_deepinfra_names_the_model_in_the_path(start_emulator: StartEmulator) -> None:
    emu = start_emulator("deepinfra", api_key=KEY)
    with load_reranker("deepinfra:BAAI/bge-reranker-v2-m3", base_url=emu.base_url, api_key=KEY) as reranker:
        assert isinstance(reranker, HTTPReranker)
        response = reranker.rerank(QUERY, DOCS, top_n=2)
    assert reranker.url.endswith("/v1/inference/BAAI/bge-reranker-v2-m3")
    request = emu.requests[0]
    assert request.path == "/v1/inference/BAAI/bge-reranker-v2-m3"
    assert request.body == {"query": QUERY, "documents": DOCS}  # no top-n, no model in the body
    assert [x.index for x in response.results] == [2, 1]
    assert response.usage.prompt_tokens == 11  # the emulator counts words
    assert response.request_ids == ["deepinfra-emulated-1"]
    assert get_dialect("deepinfra").url("https://api.deepinfra.com/v1", model="Qwen/Qwen3-Reranker-8B") == (
        "https://api.deepinfra.com/v1/inference/Qwen/Qwen3-Reranker-8B"
    )


def test_deepinfra_reads_deepinfra_token(start_emulator: StartEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEEPINFRA_TOKEN", KEY)
    emu = start_emulator("deepinfra", api_key=KEY)
    with load_reranker("deepinfra:test-model", base_url=emu.base_url) as reranker:
        assert len(reranker.rerank(QUERY, DOCS).results) == 5
    with pytest.raises(ConfigurationError, match="needs a model"):
        load_reranker("deepinfra")


def _scores(change: Any) -> Any:
    def mutate(payload: Any) -> Any:
        payload["scores"] = change(payload["scores"])
        return payload

    return mutate


@pytest.mark.parametrize(
    "mutate",
    [
        _scores(lambda s: s[:-1]),
        _scores(lambda s: [*s, 0.5]),
        _scores(lambda s: [math.nan, *s[1:]]),
        _scores(lambda s: ["0.5", *s[1:]]),
        lambda p: {"detail": "model is loading"},
    ],
    ids=["one short", "one extra", "nan", "string", "no scores"],
)
def test_deepinfra_broken_answers_raise_response_format_error(start_emulator: StartEmulator, mutate: Any) -> None:
    emu = start_emulator("deepinfra")
    emu.fail_next(Fault(mutate=mutate))
    with (
        load_reranker("deepinfra:test-model", base_url=emu.base_url, api_key=KEY) as reranker,
        pytest.raises(ResponseFormatError) as caught,
    ):
        reranker.rerank(QUERY, DOCS)
    assert caught.value.provider == "deepinfra"
