"""Each dialect's request building, URL forms, option checks and response quirks, without a server."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.dialects.cases import BY_PROVIDER, CASES, CLOUDS, NESTED, WireCase
from tests.support.dialect_apps import APPS

from rerank_core import ConfigurationError, Document, ResponseFormatError
from rerank_core.dialects import DIALECTS, get_dialect

DOCS = [Document("alpha"), Document("beta", id="b", metadata={"title": "B", "secret": "s3"})]


def build(provider: str, *, top_n: int | None = None, **options: Any) -> dict[str, Any]:
    return build_with(provider, options, top_n)


def build_with(provider: str, options: dict[str, Any], top_n: int | None = None) -> dict[str, Any]:
    dialect = get_dialect(provider)
    dialect.check_options(options)
    return dialect.build_body("q", DOCS, model="m", top_n=top_n, options=options)


def test_every_provider_has_a_dialect_an_emulator_app_and_a_wire_case() -> None:
    expected = {"fireworks", "nebius", "generic", "together", "onerouter", "cohere", "cohere-v1", "jina"}
    expected |= {"voyage", "mixedbread", "pinecone", "nvidia", "tei", "vllm", "infinity", "azure", "deepinfra"}
    expected |= {"siliconflow", "openrouter", "zeroentropy", "contextual", "dashscope-compatible"}
    assert set(DIALECTS) == expected | CLOUDS | NESTED
    assert set(APPS) == expected | CLOUDS | NESTED
    assert set(BY_PROVIDER) == expected
    assert {APPS[name].paths[0] for name in expected} >= {get_dialect(name).path_for("test-model") for name in expected}


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.provider)
@pytest.mark.parametrize("top_n", [None, 2])
def test_body_uses_the_providers_field_names_and_nothing_else(case: WireCase, top_n: int | None) -> None:
    body = build(case.provider, top_n=top_n)
    assert set(body) <= APPS[case.provider].allowed
    assert [doc if isinstance(doc, str) else doc["text"] for doc in body[case.docs_key]] == ["alpha", "beta"]
    assert body["query"] == ({"text": "q"} if case.query_is_object else "q")
    assert body.items() >= case.fixed.items()
    assert ("model" in body) == case.sends_model
    top_keys = {"top_n", "top_k"} & set(body)
    if top_n is None or case.top_key is None:
        assert not top_keys, "top-n must be omitted (never null) when unset or unsupported"
    else:
        assert top_keys == {case.top_key}
        assert body[case.top_key] == top_n
    assert get_dialect(case.provider).sends_top_n == (case.top_key is not None)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.provider)
def test_metadata_stays_home_unless_rank_fields_ask_for_it(case: WireCase) -> None:
    sent = json.dumps(build(case.provider))
    assert "s3" not in sent
    assert '"B"' not in sent


def test_generic_sends_ids_always_and_metadata_only_when_asked() -> None:
    assert build("generic")["documents"] == ["alpha", {"text": "beta", "id": "b"}]
    assert build("generic", send_metadata=["title"])["documents"][1] == {
        "text": "beta",
        "id": "b",
        "metadata": {"title": "B"},
    }
    everything = build("generic", send_metadata=True)
    assert everything["documents"][1]["metadata"] == {"title": "B", "secret": "s3"}
    assert "send_metadata" not in everything


def test_generic_rejects_a_malformed_send_metadata() -> None:
    with pytest.raises(ConfigurationError, match="send_metadata"):
        get_dialect("generic").check_options({"send_metadata": "title"})


@pytest.mark.parametrize("provider", ["together", "cohere-v1", "mixedbread", "pinecone"])
def test_rank_fields_send_objects_with_only_the_named_metadata(provider: str) -> None:
    body = build(provider, rank_fields=["title", "text"])
    docs_key = BY_PROVIDER[provider].docs_key
    assert body[docs_key] == [{"text": "alpha"}, {"text": "beta", "title": "B"}]
    assert body["rank_fields"] == ["title", "text"]


@pytest.mark.parametrize("provider", ["together", "cohere-v1", "mixedbread", "pinecone"])
def test_rank_fields_must_be_a_list_of_names(provider: str) -> None:
    with pytest.raises(ConfigurationError, match="rank_fields"):
        get_dialect(provider).check_options({"rank_fields": "title"})


def test_pinecone_always_sends_objects_and_authenticates_with_api_key_header() -> None:
    dialect = get_dialect("pinecone")
    assert build("pinecone")["documents"] == [{"text": "alpha"}, {"text": "beta"}]
    assert "rank_fields" not in build("pinecone")  # ["text"] is the API default
    assert build("pinecone", parameters={"truncate": "END"})["parameters"] == {"truncate": "END"}
    headers = dialect.headers("pc-key")
    assert headers["Api-Key"] == "pc-key"
    assert "Authorization" not in headers
    assert headers["X-Pinecone-Api-Version"]


@pytest.mark.parametrize(
    ("provider", "option", "value"),
    [
        ("fireworks", "task", "Given a web search query, retrieve relevant passages"),
        ("nebius", "service_tier", "flex"),
        ("nebius", "user", "user-1"),
        ("cohere", "max_tokens_per_doc", 512),
        ("cohere", "priority", 1),
        ("cohere-v1", "max_chunks_per_doc", 10),
        ("voyage", "truncation", False),
        ("mixedbread", "rewrite_query", True),
        ("nvidia", "truncate", "END"),
        ("tei", "truncate", True),
        ("tei", "truncation_direction", "Left"),
        ("tei", "raw_scores", True),
        ("vllm", "truncate_prompt_tokens", 256),
        ("vllm", "priority", 2),
        ("vllm", "use_activation", False),
        ("infinity", "raw_scores", True),
    ],
)
def test_documented_options_are_forwarded_verbatim(provider: str, option: str, value: object) -> None:
    assert build_with(provider, {option: value})[option] == value


@pytest.mark.parametrize("provider", sorted(DIALECTS))
def test_unknown_options_are_refused_before_any_request(provider: str) -> None:
    with pytest.raises(ConfigurationError, match="not_an_option") as caught:
        get_dialect(provider).check_options({"not_an_option": 1})
    assert caught.value.provider == provider


@pytest.mark.parametrize(
    ("provider", "option", "value"),
    [
        ("nvidia", "truncate", "START"),
        ("nebius", "service_tier", "over-limit"),
        ("tei", "truncation_direction", "up"),
        ("voyage", "truncation", 1),
    ],
)
def test_option_values_outside_the_documented_set_are_refused(provider: str, option: str, value: object) -> None:
    with pytest.raises(ConfigurationError, match=option):
        get_dialect(provider).check_options({option: value})


def test_nebius_project_id_goes_into_the_query_string_not_the_body() -> None:
    dialect = get_dialect("nebius")
    options: dict[str, Any] = {"ai_project_id": "proj 1", "user": "u"}
    assert dialect.url("https://api.tokenfactory.nebius.com", options) == (
        "https://api.tokenfactory.nebius.com/v1/rerank?ai_project_id=proj+1"
    )
    assert "ai_project_id" not in build_with("nebius", options)


@pytest.mark.parametrize(
    ("provider", "base_url", "endpoint"),
    [
        ("fireworks", None, "https://api.fireworks.ai/inference/v1/rerank"),
        ("fireworks", "https://api.fireworks.ai/inference/v1/", "https://api.fireworks.ai/inference/v1/rerank"),
        ("nebius", None, "https://api.tokenfactory.nebius.com/v1/rerank"),
        ("together", None, "https://api.together.xyz/v1/rerank"),
        ("together", "https://api.together.xyz/v1", "https://api.together.xyz/v1/rerank"),
        ("onerouter", None, "https://llm.onerouter.pro/v1/rerank"),
        ("onerouter", "https://llm.onerouter.pro/v1/rerank", "https://llm.onerouter.pro/v1/rerank"),
        ("cohere", None, "https://api.cohere.com/v2/rerank"),
        ("cohere-v1", None, "https://api.cohere.com/v1/rerank"),
        ("jina", None, "https://api.jina.ai/v1/rerank"),
        ("voyage", None, "https://api.voyageai.com/v1/rerank"),
        ("voyage", "https://api.voyageai.com/v1", "https://api.voyageai.com/v1/rerank"),
        ("mixedbread", None, "https://api.mixedbread.com/v1/reranking"),
        ("pinecone", None, "https://api.pinecone.io/rerank"),
        ("nvidia", "http://nim:8000", "http://nim:8000/v1/ranking"),
        ("nvidia", "http://nim:8000/v1", "http://nim:8000/v1/ranking"),
        (
            "nvidia",
            "https://ai.api.nvidia.com/v1/retrieval/nvidia/llama-3_2-nv-rerankqa-1b-v2/reranking",
            "https://ai.api.nvidia.com/v1/retrieval/nvidia/llama-3_2-nv-rerankqa-1b-v2/reranking",
        ),
        ("tei", "http://tei:8080/", "http://tei:8080/rerank"),
        ("vllm", "http://vllm:8000", "http://vllm:8000/rerank"),
        ("infinity", "http://infinity:7997", "http://infinity:7997/rerank"),
        ("infinity", "http://infinity:7997/rerank?x=1", "http://infinity:7997/rerank?x=1"),
    ],
)
def test_base_url_accepts_the_documented_forms(provider: str, base_url: str | None, endpoint: str) -> None:
    dialect = get_dialect(provider)
    assert dialect.url(base_url or str(dialect.default_base_url)) == endpoint


@pytest.mark.parametrize("provider", ["nvidia", "tei", "vllm", "infinity"])
def test_self_hosted_servers_need_a_base_url_but_no_key(provider: str) -> None:
    dialect = get_dialect(provider)
    assert dialect.default_base_url is None
    assert not dialect.requires_api_key


@pytest.mark.parametrize(
    ("provider", "options", "kind"),
    [
        ("nvidia", {}, "logit"),
        ("tei", {}, "probability"),
        ("tei", {"raw_scores": True}, "logit"),
        ("infinity", {"raw_scores": True}, "logit"),
        ("vllm", {"use_activation": False}, "logit"),
        ("vllm", {"use_activation": True}, "unknown"),
        ("vllm", {}, "unknown"),
        ("infinity", {}, "probability"),
        ("generic", {}, "unknown"),
        ("cohere", {}, "probability"),
    ],
)
def test_score_kind_follows_the_options(provider: str, options: dict[str, Any], kind: str) -> None:
    assert get_dialect(provider).score_kind_for(options) == kind


def test_parsing_never_assumes_score_order() -> None:
    payload = {"results": [{"index": 0, "relevance_score": 0.1}, {"index": 1, "relevance_score": 0.9}]}
    parsed = get_dialect("onerouter").parse(payload, headers={}, n_documents=2)
    assert parsed.scores == [(0, 0.1), (1, 0.9)]


def test_fireworks_plain_string_and_null_documents_are_ignored() -> None:
    payload = {
        "object": "list",
        "model": "fw",
        "data": [{"index": 1, "relevance_score": 0.7, "document": "beta"}, {"index": 0, "relevance_score": 0.2}],
        "usage": {"prompt_tokens": 5, "total_tokens": 5},
    }
    parsed = get_dialect("fireworks").parse(payload, headers={}, n_documents=2)
    assert parsed.scores == [(1, 0.7), (0, 0.2)]
    assert (parsed.model, parsed.usage.total_tokens) == ("fw", 5)


def test_together_json_encoded_object_echo_is_ignored() -> None:
    echo = {"text": json.dumps({"title": "Llama", "text": "The llama..."})}
    payload = {
        "object": "rerank",
        "id": "t-1",
        "model": "m",
        "results": [{"index": 0, "relevance_score": 0.3, "document": echo}],
    }
    parsed = get_dialect("together").parse(payload, headers={}, n_documents=1)
    assert (parsed.scores, parsed.request_id) == ([(0, 0.3)], "t-1")


@pytest.mark.parametrize("provider", ["cohere", "cohere-v1"])
def test_cohere_usage_comes_from_meta(provider: str) -> None:
    payload = {
        "id": "co-1",
        "results": [{"index": 0, "relevance_score": 0.5}],
        "meta": {"billed_units": {"search_units": 2}, "tokens": {"input_tokens": 40, "output_tokens": 0}},
    }
    parsed = get_dialect(provider).parse(payload, headers={}, n_documents=1)
    assert (parsed.usage.search_units, parsed.usage.prompt_tokens, parsed.usage.total_tokens) == (2, 40, 40)
    assert parsed.request_id == "co-1"


def test_tei_reads_a_bare_list_and_usage_from_headers() -> None:
    payload = [{"index": 1, "score": 0.8}, {"index": 0, "score": 0.1}]
    parsed = get_dialect("tei").parse(payload, headers={"X-Compute-Tokens": "17"}, n_documents=2)
    assert parsed.scores == [(1, 0.8), (0, 0.1)]
    assert (parsed.usage.prompt_tokens, parsed.usage.total_tokens) == (17, 17)


def test_nim_rankings_carry_logits() -> None:
    payload = {"rankings": [{"index": 0, "logit": -1.24}, {"index": 1, "logit": -5.41}]}
    assert get_dialect("nvidia").parse(payload, headers={}, n_documents=2).scores == [(0, -1.24), (1, -5.41)]


def test_pinecone_and_mixedbread_scores_and_units() -> None:
    pinecone = {"model": "m", "data": [{"index": 0, "score": 0.4, "document": None}], "usage": {"rerank_units": 1}}
    assert get_dialect("pinecone").parse(pinecone, headers={}, n_documents=1).usage.rerank_units == 1
    mixedbread = {"data": [{"index": 0, "score": 0.6, "object": "rank_result"}], "object": "list"}
    assert get_dialect("mixedbread").parse(mixedbread, headers={}, n_documents=1).scores == [(0, 0.6)]


@pytest.mark.parametrize(
    "payload",
    [
        {"data": [{"index": 2, "relevance_score": 0.5}]},
        {"data": [{"index": 0, "relevance_score": 0.5}, {"index": 0, "relevance_score": 0.4}]},
        {"data": [{"index": 0, "relevance_score": float("nan")}]},
        {"object": "list"},
    ],
    ids=["out-of-range", "duplicate", "nan", "no-list"],
)
def test_broken_responses_raise_typed_errors(payload: Any) -> None:
    with pytest.raises(ResponseFormatError):
        get_dialect("fireworks").parse(payload, headers={}, n_documents=2)


def test_generic_needs_a_model_before_any_request() -> None:
    from rerank_core import HTTPReranker

    with pytest.raises(ConfigurationError, match="needs a model") as caught:
        HTTPReranker("generic", base_url="http://127.0.0.1:9", api_key="k")
    assert "generic:<model" in str(caught.value)
