"""Cloudflare Workers AI: the account and model in the path, `contexts` and `top_k`, the API envelope both ways,
the full-URL form for AI Gateway routes, and the account id from the environment."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from tests.dialects.test_end_to_end import KEY, QUERY
from tests.support.dialect_apps import CLOUDFLARE_ACCOUNT
from tests.support.emulator import Fault
from tests.support.fixtures import StartEmulator

from rerank_core import ConfigurationError, InvalidRequestError, ResponseFormatError, load_reranker
from rerank_core.dialects import get_dialect

DOCS = ["blue sky", "red apple", "apple pie red", "red car", "apple tree"]
RUN = f"/client/v4/accounts/{CLOUDFLARE_ACCOUNT}/ai/run"


@pytest.fixture(autouse=True)
def no_account_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLOUDFLARE_ACCOUNT_ID", raising=False)


def test_account_and_model_name_the_path_and_the_envelope_is_read(start_emulator: StartEmulator) -> None:
    emu = start_emulator("cloudflare", api_key=KEY)
    options = {"account_id": CLOUDFLARE_ACCOUNT}
    with load_reranker("cloudflare", base_url=emu.base_url, api_key=KEY, options=options) as reranker:
        response = reranker.rerank(QUERY, DOCS, top_n=2)
    request = emu.requests[0]
    assert request.path == f"{RUN}/@cf/baai/bge-reranker-base"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.body == {"query": QUERY, "contexts": [{"text": text} for text in DOCS], "top_k": 2}
    assert [x.index for x in response.results] == [2, 1]
    assert [x.document.text for x in response.results] == [DOCS[2], DOCS[1]]


async def test_the_account_and_token_come_from_the_environment(
    start_emulator: StartEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLOUDFLARE_ACCOUNT_ID", CLOUDFLARE_ACCOUNT)
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", KEY)
    emu = start_emulator("cloudflare", api_key=KEY)
    with load_reranker("cloudflare:@cf/baai/bge-reranker-v2-m3", base_url=emu.base_url + "/client/v4") as reranker:
        response = await reranker.arerank(QUERY, DOCS)
    assert emu.requests[0].path == f"{RUN}/@cf/baai/bge-reranker-v2-m3"
    assert "top_k" not in emu.requests[0].body
    assert sorted(x.index for x in response.results) == list(range(len(DOCS)))


def test_no_account_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="account id") as caught:
        load_reranker("cloudflare", api_key=KEY)
    assert "CLOUDFLARE_ACCOUNT_ID" in (caught.value.hint or "")


def test_a_full_run_url_is_used_as_given() -> None:
    gateway = "https://gateway.ai.cloudflare.com/v1/acct/my-gateway/workers-ai/ai/run/@cf/baai/bge-reranker-base"
    assert get_dialect("cloudflare").url(gateway) == gateway
    assert get_dialect("cloudflare").url("https://api.cloudflare.com", {"account_id": "a b"}) == (
        "https://api.cloudflare.com/client/v4/accounts/a%20b/ai/run/@cf/baai/bge-reranker-base"
    )


@pytest.mark.parametrize(
    "mutate",
    [
        lambda p: {"success": True, "result": {}},
        lambda p: {**p, "result": {"response": [{"id": 7, "score": 0.5}]}},
        lambda p: {**p, "result": {"response": [{"id": 0, "score": "high"}]}},
    ],
    ids=["no response list", "id out of range", "non-numeric score"],
)
def test_a_broken_answer_is_a_response_format_error(start_emulator: StartEmulator, mutate: Any) -> None:
    emu = start_emulator("cloudflare", api_key=KEY)
    emu.fail_next(Fault(mutate=mutate))
    options = {"account_id": CLOUDFLARE_ACCOUNT}
    with (
        load_reranker("cloudflare", base_url=emu.base_url, api_key=KEY, options=options) as reranker,
        pytest.raises(ResponseFormatError) as caught,
    ):
        reranker.rerank(QUERY, DOCS)
    assert caught.value.provider == "cloudflare"


def test_an_error_envelope_names_cloudflares_message(start_emulator: StartEmulator) -> None:
    emu = start_emulator("cloudflare", api_key=KEY)
    emu.fail_next(Fault(status=400, body=emu.app.error_body(400, "AiError: Bad input: missing contexts")))
    options = {"account_id": CLOUDFLARE_ACCOUNT}
    with (
        load_reranker("cloudflare", base_url=emu.base_url, api_key=KEY, options=options) as reranker,
        pytest.raises(InvalidRequestError, match="missing contexts"),
    ):
        reranker.rerank(QUERY, DOCS)


def test_the_emulator_rejects_stray_fields_and_plain_string_contexts(start_emulator: StartEmulator) -> None:
    emu = start_emulator("cloudflare")
    body = {"query": "q", "contexts": [{"text": "a"}]}
    assert httpx.post(emu.url, json=body).status_code == 200
    assert httpx.post(emu.url, json={**body, "surprise": True}).status_code in (400, 422)
    assert httpx.post(emu.url, json={"query": "q", "contexts": ["a"]}).status_code == 400


def test_the_haystack_ranker_reranks_through_cloudflare(
    start_emulator: StartEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from haystack import Document as HaystackDocument

    from rerank_haystack import RerankRanker

    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", KEY)
    emu = start_emulator("cloudflare", api_key=KEY)
    config = {"provider": "cloudflare", "base_url": emu.base_url, "options": {"account_id": CLOUDFLARE_ACCOUNT}}
    with RerankRanker(reranker=config, top_k=2) as ranker:
        out = ranker.run(
            query=QUERY, documents=[HaystackDocument(content=text, id=str(i)) for i, text in enumerate(DOCS)]
        )
    assert [(doc.id, doc.content) for doc in out["documents"]] == [("2", DOCS[2]), ("1", DOCS[1])]
