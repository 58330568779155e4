"""Every dialect end to end: `load_reranker("<provider>:<model>")` against its loopback emulator, sync and async."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, Literal

import httpx
import pytest
from tests.dialects.cases import BY_PROVIDER, CASES, CLOUDS, NESTED, WireCase, sent_texts
from tests.support.dialect_apps import APPS
from tests.support.emulator import Fault, ProviderEmulator
from tests.support.fixtures import StartEmulator

from rerank_core import (
    AuthenticationError,
    Document,
    InvalidRequestError,
    RateLimitError,
    Reranker,
    RerankResponse,
    ResponseFormatError,
    load_reranker,
)
from rerank_core.dialects import DIALECTS

Mode = Literal["sync", "async"]
KEY = "sk-emulated-secret-0123"
QUERY = "red apple pie"
# Emulator scores are the share of query words found: 2 > 1 > 3 == 4 (tie: lower index first) > 0.
EXPECTED_ORDER = [2, 1, 3, 4, 0]


def inputs() -> list[Any]:
    return [
        "blue sky",
        Document("red apple", id="d-1", metadata={"source": "wiki", "page": 3}),
        {"text": "apple pie red", "id": "d-2", "lang": "en"},
        Document("red car", metadata={"tags": ["x"]}),
        "apple tree",
    ]


def reranker_for(emu: ProviderEmulator, provider: str, **kwargs: Any) -> Reranker:
    return load_reranker(f"{provider}:test-model", base_url=emu.base_url, api_key=KEY, max_retries=0, **kwargs)


async def call(reranker: Reranker, mode: Mode, docs: list[Any], top_n: int | None = None) -> RerankResponse:
    if mode == "sync":
        return reranker.rerank(QUERY, docs, top_n=top_n)
    return await reranker.arerank(QUERY, docs, top_n=top_n)


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> Mode:
    value: Mode = request.param
    return value


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.provider)
async def test_ranking_request_shape_and_round_trip(case: WireCase, mode: Mode, start_emulator: StartEmulator) -> None:
    emu = start_emulator(case.provider, api_key=KEY)
    docs = inputs()
    before = copy.deepcopy(docs)
    with reranker_for(emu, case.provider) as reranker:
        response = await call(reranker, mode, docs, top_n=3)

    # The request: the provider's own field names, documented fields only, auth the provider's way.
    (request,) = emu.requests
    body = request.body
    assert request.path == APPS[case.provider].paths[0]
    assert set(body) <= APPS[case.provider].allowed
    assert sent_texts(body, case) == ["blue sky", "red apple", "apple pie red", "red car", "apple tree"]
    assert body.items() >= case.fixed.items()
    assert body.get("model") == ("test-model" if case.sends_model else None)
    if case.top_key is not None:
        assert body[case.top_key] == 3
    assert KEY in (request.headers.get("authorization", "") + request.headers.get("api-key", ""))

    # The answer: sorted, ties by index, cut to top_n client-side, the caller's own documents re-attached.
    assert [r.index for r in response.results] == EXPECTED_ORDER[:3]
    scores = [r.relevance_score for r in response.results]
    assert scores == sorted(scores, reverse=True)
    assert {(d.index, d.reason) for d in response.dropped} == {(4, "top_n"), (0, "top_n")}
    assert response.provider == case.provider
    by_index = {r.index: r.document for r in response.results}
    assert by_index[1] == Document("red apple", id="d-1", metadata={"source": "wiki", "page": 3})
    assert by_index[2] == Document("apple pie red", id="d-2", metadata={"lang": "en"})
    assert by_index[3].metadata == {"tags": ["x"]}
    assert docs == before


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.provider)
async def test_all_documents_ranked_without_top_n(case: WireCase, mode: Mode, start_emulator: StartEmulator) -> None:
    emu = start_emulator(case.provider)
    with reranker_for(emu, case.provider) as reranker:
        response = await call(reranker, mode, inputs())
    assert [r.index for r in response.results] == EXPECTED_ORDER
    assert response.results[2].relevance_score == response.results[3].relevance_score  # the tie
    assert response.dropped == []
    assert not {"top_n", "top_k"} & set(emu.requests[0].body), "no top-n field (and never null) when unset"


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.provider)
async def test_provider_error_message_reaches_the_exception(
    case: WireCase, mode: Mode, start_emulator: StartEmulator
) -> None:
    emu = start_emulator(case.provider)
    app = APPS[case.provider]
    emu.fail_next(Fault(status=400, body=app.error_body(400, "emulated complaint 4711")))
    with reranker_for(emu, case.provider) as reranker, pytest.raises(InvalidRequestError) as caught:
        await call(reranker, mode, ["a", "b"])
    error = caught.value
    assert "emulated complaint 4711" in str(error)
    assert (error.provider, error.status_code) == (case.provider, 400)
    assert emu.request_count == 1


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.provider)
async def test_rate_limit_body_is_read_in_the_providers_shape(
    case: WireCase, mode: Mode, start_emulator: StartEmulator
) -> None:
    emu = start_emulator(case.provider)
    emu.fail_next(Fault(status=429))  # the app's own error body, message "injected fault"
    with reranker_for(emu, case.provider) as reranker, pytest.raises(RateLimitError, match="injected fault"):
        await call(reranker, mode, ["a"])


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.provider)
async def test_wrong_key_is_an_authentication_error_without_the_key(
    case: WireCase, mode: Mode, start_emulator: StartEmulator
) -> None:
    emu = start_emulator(case.provider, api_key="sk-the-right-one")
    with reranker_for(emu, case.provider) as reranker, pytest.raises(AuthenticationError) as caught:
        await call(reranker, mode, ["a"])
    assert caught.value.status_code == 401
    assert KEY not in str(caught.value)
    assert KEY not in repr(caught.value)


def result_list(payload: Any) -> list[dict[str, Any]]:
    if isinstance(payload, list):
        return payload
    return next(payload[key] for key in ("results", "data", "rankings") if key in payload)


def out_of_range(payload: Any) -> Any:
    result_list(payload)[0]["index"] = 99
    return payload


def duplicated(payload: Any) -> Any:
    items = result_list(payload)
    items[1]["index"] = items[0]["index"]
    return payload


def not_a_number(payload: Any) -> Any:
    item = result_list(payload)[0]
    item[next(key for key in ("relevance_score", "score", "logit") if key in item)] = float("nan")
    return payload


def missing_one(payload: Any) -> Any:
    result_list(payload).pop()
    return payload


# DeepInfra answers a bare score list in input order, with no indices to break: test_azure_deepinfra.py.
@pytest.mark.parametrize(
    "case", [case for case in CASES if case.provider != "deepinfra"], ids=lambda case: case.provider
)
@pytest.mark.parametrize("mutate", [out_of_range, duplicated, not_a_number, missing_one], ids=lambda f: f.__name__)
async def test_broken_answers_raise_response_format_error(
    case: WireCase, mutate: Callable[[Any], Any], mode: Mode, start_emulator: StartEmulator
) -> None:
    emu = start_emulator(case.provider)
    emu.fail_next(Fault(mutate=mutate))
    with reranker_for(emu, case.provider) as reranker, pytest.raises(ResponseFormatError) as caught:
        await call(reranker, mode, inputs())
    assert caught.value.provider == case.provider


STRICT = sorted(name for name, app in APPS.items() if app.strict and name not in CLOUDS | NESTED)


@pytest.mark.parametrize("provider", STRICT)
def test_strict_emulators_reject_unknown_fields(provider: str, start_emulator: StartEmulator) -> None:
    """The emulators enforce `additionalProperties: false`, so any stray field a dialect sent would fail above."""
    emu = start_emulator(provider)
    case = BY_PROVIDER[provider]
    body: dict[str, Any] = {"model": "m"} if case.sends_model else {}
    body["query"] = {"text": "q"} if case.query_is_object else "q"
    body[case.docs_key] = [{"text": "a"}] if provider in ("nvidia", "pinecone") else ["a"]
    assert httpx.post(emu.url, json=body).status_code == 200
    assert httpx.post(emu.url, json={**body, "surprise": True}).status_code in (400, 422)


# -- quirks, one provider at a time ---------------------------------------------------------------------------


async def test_onerouter_index_order_and_ignored_top_n_are_fixed_client_side(
    mode: Mode, start_emulator: StartEmulator
) -> None:
    emu = start_emulator("onerouter")
    with reranker_for(emu, "onerouter") as reranker:
        response = await call(reranker, mode, inputs(), top_n=2)
    assert emu.requests[0].body["top_n"] == 2
    assert [r.index for r in response.results] == [2, 1]
    assert len(response.dropped) == 3


async def test_together_rank_fields_send_objects_and_ignore_the_json_echo(
    mode: Mode, start_emulator: StartEmulator
) -> None:
    emu = start_emulator("together")
    docs = [
        Document("a pie recipe", metadata={"title": "Red apple", "secret": "do not send"}),
        Document("a car", metadata={"title": "Blue sky"}),
    ]
    with reranker_for(emu, "together", options={"rank_fields": ["title", "text"]}) as reranker:
        response = await call(reranker, mode, docs)
    body = emu.requests[0].body
    assert body["documents"] == [{"text": "a pie recipe", "title": "Red apple"}, {"text": "a car", "title": "Blue sky"}]
    assert body["rank_fields"] == ["title", "text"]
    assert [r.index for r in response.results] == [0, 1]  # ranked by title: "Red apple" matches the query
    assert response.results[0].document is docs[0]  # not the JSON string Together echoes


async def test_nebius_cuts_client_side_and_sends_project_id_as_query_parameter(
    mode: Mode, start_emulator: StartEmulator
) -> None:
    emu = start_emulator("nebius")
    options = {"ai_project_id": "proj-7", "service_tier": "flex"}
    with reranker_for(emu, "nebius", options=options) as reranker:
        response = await call(reranker, mode, inputs(), top_n=1)
    assert emu.requests[0].path == "/v1/rerank?ai_project_id=proj-7"
    assert emu.requests[0].body["service_tier"] == "flex"
    assert [r.index for r in response.results] == [2]


async def test_nvidia_logits_and_sigmoid_normalization(mode: Mode, start_emulator: StartEmulator) -> None:
    emu = start_emulator("nvidia")
    with reranker_for(emu, "nvidia") as raw, reranker_for(emu, "nvidia", normalize="sigmoid") as normalized:
        logits = await call(raw, mode, inputs())
        probabilities = await call(normalized, mode, inputs())
    assert logits.score_kind == "logit"
    assert logits.results[-1].relevance_score < 0
    assert probabilities.score_kind == "probability"
    assert [r.index for r in probabilities.results] == [r.index for r in logits.results] == EXPECTED_ORDER
    assert probabilities.results[0].relevance_score == pytest.approx(0.99, abs=1e-4)  # the emulator's p


async def test_tei_splits_past_32_texts_and_sums_header_usage(mode: Mode, start_emulator: StartEmulator) -> None:
    emu = start_emulator("tei")
    docs = [f"doc {i}" + (" red apple" if i == 37 else "") for i in range(40)]
    with reranker_for(emu, "tei") as reranker:
        response = await call(reranker, mode, docs, top_n=1)
    assert sorted(len(r.body["texts"]) for r in emu.requests) == [8, 32]
    assert [r.index for r in response.results] == [37]
    assert response.usage.total_tokens == sum(len(d.split()) for d in docs)


@pytest.mark.parametrize(("provider", "option"), [("tei", "raw_scores"), ("infinity", "raw_scores")])
async def test_raw_scores_are_reported_as_logits(
    provider: str, option: str, mode: Mode, start_emulator: StartEmulator
) -> None:
    emu = start_emulator(provider)
    with reranker_for(emu, provider, options={option: True}) as reranker:
        response = await call(reranker, mode, inputs())
    assert emu.requests[0].body[option] is True
    assert response.score_kind == "logit"
    assert response.results[-1].relevance_score < 0


async def test_vllm_use_activation_false_gives_logits(mode: Mode, start_emulator: StartEmulator) -> None:
    emu = start_emulator("vllm")
    with reranker_for(emu, "vllm", options={"use_activation": False}) as reranker:
        response = await call(reranker, mode, inputs(), top_n=2)
    assert emu.requests[0].body["top_n"] == 2
    assert (response.score_kind, [r.index for r in response.results]) == ("logit", [2, 1])


@pytest.mark.parametrize("provider", ["nvidia", "tei", "vllm", "infinity"])
def test_self_hosted_servers_work_without_a_key(
    provider: str, start_emulator: StartEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = DIALECTS[provider].api_key_env
    if env:
        monkeypatch.delenv(env, raising=False)
    emu = start_emulator(provider)
    with load_reranker(f"{provider}:m", base_url=emu.base_url) as reranker:
        assert [r.index for r in reranker.rerank(QUERY, inputs(), top_n=2).results] == [2, 1]
    assert "authorization" not in emu.requests[0].headers


def test_pinecone_sends_its_version_header(start_emulator: StartEmulator) -> None:
    emu = start_emulator("pinecone", api_key=KEY)
    with reranker_for(emu, "pinecone") as reranker:
        reranker.rerank(QUERY, ["a"])
    headers = emu.requests[0].headers
    assert headers["api-key"] == KEY
    assert headers["x-pinecone-api-version"] == "2025-10"
    assert "authorization" not in headers


def test_cohere_reports_billed_search_units(start_emulator: StartEmulator) -> None:
    emu = start_emulator("cohere")
    with reranker_for(emu, "cohere") as reranker:
        response = reranker.rerank(QUERY, inputs())
    assert response.usage.search_units == 1
    assert response.usage.prompt_tokens == 11


def test_default_model_is_sent_when_none_is_named(start_emulator: StartEmulator) -> None:
    emu = start_emulator("together")
    with load_reranker("together", base_url=emu.base_url, api_key=KEY) as reranker:
        response = reranker.rerank(QUERY, ["a"])
    assert emu.requests[0].body["model"] == "Salesforce/Llama-Rank-V1"
    assert response.model == "Salesforce/Llama-Rank-V1"
