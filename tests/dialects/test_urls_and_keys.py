"""base_url in every form a user copies from a provider's docs: host, host + version, full endpoint."""

from __future__ import annotations

import pytest
from tests.dialects.test_end_to_end import KEY, QUERY
from tests.support.fixtures import StartEmulator

from rerank_core import load_reranker
from rerank_core.dialects import DIALECTS, get_dialect
from rerank_core.http import HTTPReranker

# (provider, documented endpoint, forms a user may paste); every form must reach the endpoint.
FORMS: list[tuple[str, str, list[str]]] = [
    (
        "fireworks",
        "https://api.fireworks.ai/inference/v1/rerank",
        [
            "https://api.fireworks.ai",
            "https://api.fireworks.ai/",
            "https://api.fireworks.ai/inference",
            "https://api.fireworks.ai/inference/v1",
            "https://api.fireworks.ai/inference/v1/",
            "https://api.fireworks.ai/v1",
            "https://api.fireworks.ai/inference/v1/rerank",
        ],
    ),
    ("nebius", "https://api.tokenfactory.nebius.com/v1/rerank", []),
    ("generic", "https://platform.example.com/v1/rerank", []),
    ("together", "https://api.together.xyz/v1/rerank", []),
    ("onerouter", "https://llm.onerouter.pro/v1/rerank", []),
    ("cohere", "https://api.cohere.com/v2/rerank", ["https://api.cohere.com/v1", "https://api.cohere.com/v2/"]),
    ("cohere-v1", "https://api.cohere.com/v1/rerank", ["https://api.cohere.com/v2"]),
    ("jina", "https://api.jina.ai/v1/rerank", []),
    ("voyage", "https://api.voyageai.com/v1/rerank", []),
    ("voyage", "https://ai.mongodb.com/v1/rerank", []),
    ("mixedbread", "https://api.mixedbread.com/v1/reranking", []),
    ("pinecone", "https://api.pinecone.io/rerank", []),
    ("nvidia", "http://nim:8000/v1/ranking", []),
    ("tei", "http://tei:8080/rerank", []),
    ("vllm", "http://vllm:8000/rerank", []),
    ("vllm", "http://vllm:8000/v1/rerank", ["http://vllm:8000/v1"]),
    ("vllm", "http://vllm:8000/v2/rerank", ["http://vllm:8000/v2"]),
    ("infinity", "http://infinity:7997/rerank", []),
    ("infinity", "http://infinity:7997/v1/rerank", ["http://infinity:7997/v1"]),
    ("bedrock", "https://bedrock-agent-runtime.us-west-2.amazonaws.com/rerank", []),
    (
        "azure",
        "https://my-resource.services.ai.azure.com/providers/cohere/v2/rerank",
        ["https://my-resource.services.ai.azure.com", "https://my-resource.services.ai.azure.com/"],
    ),
    ("azure", "https://Cohere-rerank-v3-5-abc.swedencentral.models.ai.azure.com/v2/rerank", []),
    ("bedrock", "https://vpce-0a1b.bedrock-agent-runtime.us-west-2.vpce.amazonaws.com/rerank", []),
    ("siliconflow", "https://api.siliconflow.com/v1/rerank", []),
    ("siliconflow", "https://api.siliconflow.cn/v1/rerank", []),
    ("openrouter", "https://openrouter.ai/api/v1/rerank", []),
    ("zeroentropy", "https://api.zeroentropy.dev/v1/models/rerank", ["https://api.zeroentropy.dev/v1/models"]),
    ("contextual", "https://api.contextual.ai/v1/rerank", []),
    ("dashscope", "https://dashscope.aliyuncs.com/api/v1/services/rerank/text-rerank/text-rerank", []),
    ("dashscope", "https://dashscope-intl.aliyuncs.com/api/v1/services/rerank/text-rerank/text-rerank", []),
    (
        "dashscope-compatible",
        "https://dashscope-intl.aliyuncs.com/compatible-api/v1/reranks",
        ["https://dashscope-intl.aliyuncs.com", "https://dashscope-intl.aliyuncs.com/"],
    ),
    ("dashscope-compatible", "https://ws-1a2b.ap-southeast-1.maas.aliyuncs.com/compatible-api/v1/reranks", []),
]


def forms_of(endpoint: str, path: str, extra: list[str]) -> list[str]:
    """The host (or the prefix before the dialect's path), host + version segment, the full endpoint, each also
    with a trailing slash, plus the provider-specific extras."""
    root = endpoint[: -len(path)] if endpoint.endswith(path) else endpoint.rsplit("/", 1)[0]
    forms = [root, endpoint]
    segments = path.strip("/").split("/")
    if len(segments) > 1:
        forms.append(root + "/" + "/".join(segments[:-1]))
    return forms + [form + "/" for form in forms] + extra


CASES = [
    (provider, endpoint, form)
    for provider, endpoint, extra in FORMS
    for form in forms_of(endpoint, get_dialect(provider).path, extra)
]


def test_every_dialect_is_in_the_table() -> None:
    # Vertex's endpoint names the project and location, DeepInfra's the model, Cloudflare's the account and the
    # model, watsonx's the API version: tested in their own files.
    assert {provider for provider, _, _ in FORMS} == set(DIALECTS) - {"vertex", "deepinfra", "cloudflare", "watsonx"}


@pytest.mark.parametrize(("provider", "endpoint", "base_url"), CASES, ids=[f"{p}:{b}" for p, _, b in CASES])
def test_every_documented_form_reaches_the_endpoint(provider: str, endpoint: str, base_url: str) -> None:
    assert get_dialect(provider).url(base_url) == endpoint


@pytest.mark.parametrize(
    ("provider", "base_url"),
    [
        ("generic", "https://gw.example.com/rerank"),  # a gateway's endpoint without the version segment
        ("vllm", "http://vllm:8000/custom/rerank"),
        ("cohere", "https://proxy.example.com/cohere/v1/rerank"),  # a full endpoint is taken as given
        ("nvidia", "https://ai.api.nvidia.com/v1/retrieval/nvidia/llama-3_2-nv-rerankqa-1b-v2/reranking"),
    ],
)
def test_a_full_endpoint_never_gets_the_path_appended_again(provider: str, base_url: str) -> None:
    assert get_dialect(provider).url(base_url) == base_url
    assert get_dialect(provider).url(base_url + "/") == base_url


@pytest.mark.parametrize(("provider", "host"), [("vllm", "http://rerank"), ("tei", "http://rerank:8080")])
def test_a_host_named_like_the_endpoint_is_still_a_host(provider: str, host: str) -> None:
    assert get_dialect(provider).url(host) == host + "/rerank"


def test_the_query_string_of_a_base_url_is_kept() -> None:
    assert get_dialect("infinity").url("http://h:7997?x=1") == "http://h:7997/rerank?x=1"


def test_fireworks_inference_prefix_is_added_only_on_the_fireworks_host() -> None:
    assert get_dialect("fireworks").url("https://gateway.example.com/v1") == "https://gateway.example.com/v1/rerank"


@pytest.mark.parametrize(
    ("api_key", "base_url", "expected"),
    [
        ("al-atlas-issued-0123", None, "https://ai.mongodb.com/v1/rerank"),
        ("pa-voyage-issued-0123", None, "https://api.voyageai.com/v1/rerank"),
        ("al-atlas-issued-0123", "https://api.voyageai.com", "https://api.voyageai.com/v1/rerank"),  # explicit wins
    ],
)
def test_voyage_atlas_keys_go_to_mongodb_by_default(api_key: str, base_url: str | None, expected: str) -> None:
    with HTTPReranker("voyage", api_key=api_key, base_url=base_url) as reranker:
        assert reranker.url == expected
        assert api_key not in repr(reranker)


def test_voyage_atlas_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOYAGE_API_KEY", "al-from-env-0123")
    with load_reranker("voyage:rerank-2.5") as reranker:
        assert isinstance(reranker, HTTPReranker)
        assert reranker.url == "https://ai.mongodb.com/v1/rerank"


@pytest.mark.parametrize("suffix", ["", "/v1", "/v1/rerank"])
def test_each_form_works_against_a_server(suffix: str, start_emulator: StartEmulator) -> None:
    emu = start_emulator("together")
    with load_reranker("together:m", base_url=emu.base_url + suffix, api_key=KEY, max_retries=0) as reranker:
        assert reranker.rerank(QUERY, ["red apple", "sky"]).results[0].index == 0
    assert emu.requests[0].path == "/v1/rerank"
