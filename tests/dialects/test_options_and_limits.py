"""extra_body on every dialect, vLLM's documented options, rank_fields checks, per-request document caps."""

from __future__ import annotations

import json
import warnings
from typing import Any

import httpx
import pytest
from tests.dialects.cases import CLOUDS
from tests.dialects.test_end_to_end import KEY, QUERY
from tests.support.dialect_apps import APPS
from tests.support.fixtures import StartEmulator

from rerank_core import ConfigurationError, Document, load_reranker
from rerank_core.dialects import DIALECTS, get_dialect
from rerank_core.dialects.base import RankFieldsWarning
from rerank_core.dialects.pinecone import MODEL_CAPS
from rerank_core.http import HTTPReranker

DOCS = [Document("alpha", metadata={"title": "A"}), Document("beta")]


def body_of(provider: str, options: dict[str, Any], top_n: int | None = None) -> dict[str, Any]:
    dialect = get_dialect(provider)
    dialect.check_options(options)
    return dialect.build_body("q", DOCS, model="m", top_n=top_n, options=options)


@pytest.mark.parametrize("provider", sorted(set(DIALECTS) - {"generic"} - CLOUDS))
def test_extra_body_is_merged_last_into_every_dialects_body(provider: str) -> None:
    plain = body_of(provider, {}, top_n=1)
    merged = body_of(provider, {"extra_body": {"x_new_field": [1, 2], "model": "override"}}, top_n=1)
    assert merged["x_new_field"] == [1, 2]
    assert merged["model"] == "override"  # last: it wins over what the dialect built
    assert "extra_body" not in merged
    assert {k: v for k, v in merged.items() if k not in {"x_new_field", "model"}} == {
        k: v for k, v in plain.items() if k != "model"
    }


def test_generic_sends_extra_body_as_its_own_documented_field() -> None:
    body = body_of("generic", {"extra_body": {"temperature": 0}})
    assert body["extra_body"] == {"temperature": 0}
    assert "temperature" not in body


@pytest.mark.parametrize("bad", [["a"], {1: "x"}, "x"])
def test_extra_body_must_be_a_mapping_of_names(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="extra_body"):
        get_dialect("jina").check_options({"extra_body": bad})


@pytest.mark.parametrize(("provider", "field"), [("jina", "documents"), ("tei", "texts"), ("cohere", "query")])
def test_extra_body_may_not_replace_the_query_or_the_documents(provider: str, field: str) -> None:
    with pytest.raises(ConfigurationError, match=field):
        get_dialect(provider).check_options({"extra_body": {field: []}})


def test_extra_body_reaches_a_strict_server_only_when_asked(start_emulator: StartEmulator) -> None:
    emu = start_emulator("cohere")
    options = {"extra_body": {"priority": 3}}
    with load_reranker("cohere:m", base_url=emu.base_url, api_key=KEY, options=options) as reranker:
        reranker.rerank(QUERY, ["red apple"])
    assert emu.requests[0].body["priority"] == 3


VLLM_OPTIONS = {
    "instruction": "Given a web search query, retrieve relevant passages",
    "max_tokens_per_doc": 4,
    "max_tokens_per_query": 16,
    "truncation_side": "left",
    "truncate_prompt_tokens": 128,
}


def test_vllm_documented_options_are_sent_as_given(start_emulator: StartEmulator) -> None:
    assert set(VLLM_OPTIONS) <= APPS["vllm"].allowed
    emu = start_emulator("vllm")
    with load_reranker("vllm:m", base_url=emu.base_url, options=VLLM_OPTIONS) as reranker:
        reranker.rerank(QUERY, ["red apple"])
    assert emu.requests[0].body.items() >= VLLM_OPTIONS.items()


def test_vllm_truncation_side_is_left_or_right() -> None:
    with pytest.raises(ConfigurationError, match="truncation_side"):
        get_dialect("vllm").check_options({"truncation_side": "middle"})


@pytest.mark.parametrize("provider", sorted(DIALECTS))
def test_return_documents_is_refused_with_a_reason(provider: str) -> None:
    with pytest.raises(ConfigurationError, match="return_documents") as caught:
        get_dialect(provider).check_options({"return_documents": True})
    assert "result.document" in str(caught.value)


def test_cohere_v2_options_are_those_of_the_current_sdk() -> None:
    assert get_dialect("cohere").options == {"max_tokens_per_doc", "priority"}


@pytest.mark.parametrize("provider", ["together", "cohere-v1", "mixedbread", "pinecone"])
def test_empty_rank_fields_are_refused(provider: str) -> None:
    with pytest.raises(ConfigurationError, match="rank_fields is empty"):
        get_dialect(provider).check_options({"rank_fields": []})


@pytest.mark.parametrize("provider", ["together", "cohere-v1", "mixedbread", "pinecone"])
def test_a_rank_field_no_document_has_warns(provider: str) -> None:
    with pytest.warns(RankFieldsWarning, match="'titel'"):
        body_of(provider, {"rank_fields": ["titel", "text"]})


@pytest.mark.parametrize("provider", ["together", "cohere-v1", "mixedbread", "pinecone"])
def test_a_rank_field_some_document_has_does_not_warn(provider: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        body_of(provider, {"rank_fields": ["title", "text"]})


@pytest.mark.parametrize(
    ("provider", "model", "cap"),
    [
        ("voyage", None, 1000),
        ("mixedbread", None, 1000),
        ("pinecone", "cohere-rerank-4-fast", 250),
        ("pinecone", "cohere-rerank-3.5", 200),
        ("pinecone", "bge-reranker-v2-m3", 100),
        ("pinecone", "pinecone-rerank-v0", 100),
        ("pinecone", "some-new-model", 100),
        ("infinity", None, 2048),
        ("tei", None, 32),
        ("nvidia", None, 512),
    ],
)
def test_documented_caps_per_request(provider: str, model: str | None, cap: int) -> None:
    assert get_dialect(provider).max_documents_for(model) == cap
    with HTTPReranker(provider, model=model, api_key="k", base_url="http://h") as reranker:
        assert reranker.max_documents_per_request == cap
    with HTTPReranker(provider, model=model, api_key="k", base_url="http://h", max_documents_per_request=7) as own:
        assert own.max_documents_per_request == 7


def test_pinecone_table_lists_the_hosted_models() -> None:
    assert set(MODEL_CAPS) == {"cohere-rerank-4-fast", "cohere-rerank-3.5", "bge-reranker-v2-m3", "pinecone-rerank-v0"}


def test_mixedbread_splits_past_1000_documents(start_emulator: StartEmulator) -> None:
    emu = start_emulator("mixedbread")
    docs = [f"doc {i}" + (" red apple" if i == 1500 else "") for i in range(2001)]
    with load_reranker("mixedbread:m", base_url=emu.base_url, api_key=KEY) as reranker:
        response = reranker.rerank(QUERY, docs, top_n=1)
    assert sorted(len(r.body["input"]) for r in emu.requests) == [1, 1000, 1000]
    assert [r.index for r in response.results] == [1500]


def test_pinecone_splits_by_the_models_cap(start_emulator: StartEmulator) -> None:
    emu = start_emulator("pinecone", api_key=KEY)
    docs = [f"doc {i}" for i in range(250)]
    with load_reranker("pinecone:cohere-rerank-3.5", base_url=emu.base_url, api_key=KEY) as reranker:
        response = reranker.rerank(QUERY, docs)
    assert sorted(len(r.body["documents"]) for r in emu.requests) == [50, 200]
    assert len(response.results) == 250


def test_pinecone_request_id_comes_from_its_header() -> None:
    payload = {"model": "m", "data": [{"index": 0, "score": 0.5}], "usage": {"rerank_units": 1}}
    parsed = get_dialect("pinecone").parse(payload, headers={"X-Pinecone-Request-Id": "req-42"}, n_documents=1)
    assert parsed.request_id == "req-42"


# The bodies a real Infinity 0.0.78 sends (tests/integration/test_infinity_server.py checks them against the server).
INFINITY_OVER_CAP = {
    "detail": [
        {
            "type": "too_long",
            "loc": ["body", "documents"],
            "msg": "List should have at most 16 items after validation, not 17",
            "input": ["d"] * 17,
            "ctx": {"field_type": "List", "max_length": 16, "actual_length": 17},
        }
    ]
}
INFINITY_BAD_TOP_N = {
    "detail": [{"type": "greater_than", "loc": ["body", "top_n"], "msg": "Input should be greater than 0", "input": 0}]
}


@pytest.mark.parametrize(
    ("status", "body", "too_large"),
    [
        (422, json.dumps(INFINITY_OVER_CAP), True),
        (413, "", True),
        (422, json.dumps(INFINITY_BAD_TOP_N), False),
        (422, "not json", False),
        (400, json.dumps(INFINITY_OVER_CAP), False),
    ],
)
def test_infinity_recognises_its_over_cap_answer(status: int, body: str, too_large: bool) -> None:
    assert get_dialect("infinity").is_batch_too_large(status, body) is too_large


def test_infinity_emulator_answers_over_cap_like_the_real_server(start_emulator: StartEmulator) -> None:
    emu = start_emulator("infinity")
    answer = httpx.post(f"{emu.base_url}/rerank", json={"query": QUERY, "documents": ["d"] * 2049})
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["type"] == "too_long"
    assert get_dialect("infinity").is_batch_too_large(answer.status_code, answer.text)


def test_pinecone_request_id_reaches_the_response(start_emulator: StartEmulator) -> None:
    emu = start_emulator("pinecone", api_key=KEY)
    with load_reranker("pinecone:bge-reranker-v2-m3", base_url=emu.base_url, api_key=KEY) as reranker:
        assert reranker.rerank(QUERY, ["red apple"]).request_ids == ["pc-req-1"]
