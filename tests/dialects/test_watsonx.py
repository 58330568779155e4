"""IBM watsonx.ai: the API key exchanged at a loopback IAM endpoint for a token that is cached, shared by concurrent
calls and refreshed before it expires; the nested body, the version parameter, and secrets kept out of sight."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.dialects.test_end_to_end import QUERY
from tests.support.emulator import ProviderEmulator
from tests.support.fixtures import StartEmulator
from tests.support.ibm_iam import IAMServer
from tests.support.tls import loopback_ca

from rerank_core import AuthenticationError, ConfigurationError, HTTPReranker, load_reranker

KEY = "ibm-cloud-api-key-SECRET-0123456789"
DOCS = ["blue sky", "red apple", "apple pie red", "red car", "apple tree"]
PROJECT = "12ac4cf1-252f-424b-b52d-5cdd9814987f"


@pytest.fixture
def iam() -> Iterator[IAMServer]:
    server = IAMServer(KEY)
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def no_watsonx_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("WATSONX_APIKEY", "WATSONX_URL", "WATSONX_PROJECT_ID", "WATSONX_SPACE_ID"):
        monkeypatch.delenv(name, raising=False)


def watsonx(emu_url: str, iam: IAMServer, **options: str) -> HTTPReranker:
    reranker = load_reranker(
        "watsonx", base_url=emu_url, api_key=KEY, options={"project_id": PROJECT, "iam_url": iam.token_url, **options}
    )
    assert isinstance(reranker, HTTPReranker)
    return reranker


def test_one_exchange_serves_many_calls_and_the_key_never_reaches_watsonx(
    start_emulator: StartEmulator, iam: IAMServer
) -> None:
    emu = start_emulator("watsonx", api_key="unused")
    with watsonx(emu.base_url, iam) as reranker:
        first = reranker.rerank(QUERY, DOCS, top_n=2)
        reranker.rerank(QUERY, DOCS)
    assert iam.issued == ["iam-token-1"]
    assert iam.grants[0]["apikey"] == [KEY]
    request = emu.requests[0]
    assert request.path == "/ml/v1/text/rerank?version=2024-05-31"
    assert request.body == {
        "model_id": "cross-encoder/ms-marco-minilm-l-12-v2",
        "query": QUERY,
        "inputs": [{"text": text} for text in DOCS],
        "project_id": PROJECT,
        "parameters": {"return_options": {"top_n": 2}},
    }
    assert all(r.headers["authorization"] == "Bearer iam-token-1" for r in emu.requests)
    assert all(KEY not in str(r.headers) + (r.raw or b"").decode() for r in emu.requests)
    assert [x.index for x in first.results] == [2, 1]
    assert first.model == "cross-encoder/ms-marco-minilm-l-12-v2"
    assert first.usage.prompt_tokens == sum(len(text.split()) for text in DOCS)


async def test_concurrent_calls_share_one_exchange(start_emulator: StartEmulator, iam: IAMServer) -> None:
    emu = start_emulator("watsonx", api_key="unused")
    with watsonx(emu.base_url, iam) as reranker:
        await asyncio.gather(*(reranker.arerank(QUERY, DOCS) for _ in range(6)))
    assert iam.issued == ["iam-token-1"]
    assert len(emu.requests) == 6


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_token_about_to_expire_is_replaced_before_use(
    start_emulator: StartEmulator, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    iam = IAMServer(KEY, lifetimes=[30])  # inside the refresh margin: stale at once
    try:
        emu = start_emulator("watsonx", api_key="unused")
        with watsonx(emu.base_url, iam) as reranker:
            for _ in range(2):
                if mode == "sync":
                    reranker.rerank(QUERY, DOCS)
                else:
                    await reranker.arerank(QUERY, DOCS)
    finally:
        iam.stop()
    assert iam.issued == ["iam-token-1", "iam-token-2"]
    assert [r.headers["authorization"] for r in emu.requests] == ["Bearer iam-token-1", "Bearer iam-token-2"]


def test_a_refused_key_is_an_authentication_error_that_shows_no_key(start_emulator: StartEmulator) -> None:
    emu = start_emulator("watsonx", api_key="unused")
    iam = IAMServer("another-key-entirely")
    try:
        with watsonx(emu.base_url, iam) as reranker, pytest.raises(AuthenticationError) as caught:
            reranker.rerank(QUERY, DOCS)
    finally:
        iam.stop()
    assert caught.value.provider == "watsonx"
    assert "HTTP 400" in str(caught.value)
    assert KEY not in str(caught.value) + repr(caught.value)
    assert emu.requests == []


def test_the_project_comes_from_options_or_the_environment(
    start_emulator: StartEmulator, iam: IAMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigurationError, match="project or a deployment space"):
        load_reranker("watsonx", api_key=KEY)
    with pytest.raises(ConfigurationError, match="not both"):
        load_reranker("watsonx", api_key=KEY, options={"project_id": "p", "space_id": "s"})
    monkeypatch.setenv("WATSONX_SPACE_ID", "space-1")
    monkeypatch.setenv("WATSONX_APIKEY", KEY)
    emu = start_emulator("watsonx", api_key="unused")
    monkeypatch.setenv("WATSONX_URL", emu.base_url)
    with load_reranker("watsonx", options={"iam_url": iam.token_url, "version": "2025-02-11"}) as reranker:
        reranker.rerank(QUERY, DOCS)
    assert emu.requests[0].body["space_id"] == "space-1"
    assert emu.requests[0].path.endswith("?version=2025-02-11")


def test_neither_key_nor_token_appears_in_reprs_logs_or_errors(
    start_emulator: StartEmulator, iam: IAMServer, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.support.emulator import Fault

    caplog.set_level(logging.DEBUG)
    emu = start_emulator("watsonx", api_key="unused")
    with watsonx(emu.base_url, iam) as reranker:
        reranker.rerank(QUERY, DOCS)
        emu.fail_always(Fault(status=403, body=emu.app.error_body(403, "token iam-token-1 is not authorized")))
        with pytest.raises(AuthenticationError) as caught:
            reranker.rerank(QUERY, DOCS)
        seen = " ".join([repr(reranker), repr(reranker._replicas.replicas[0].auth), str(caught.value), caplog.text])
    assert "iam-token-1" in emu.requests[0].headers["authorization"]
    assert KEY not in seen
    assert "iam-token-1" not in seen


async def test_the_llamaindex_postprocessor_reranks_through_watsonx(
    start_emulator: StartEmulator, iam: IAMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    from rerank_llamaindex import RerankPostprocessor

    monkeypatch.setenv("WATSONX_APIKEY", KEY)
    emu = start_emulator("watsonx", api_key="unused")
    config = {
        "provider": "watsonx",
        "base_url": emu.base_url,
        "options": {"project_id": PROJECT, "iam_url": iam.token_url},
    }
    nodes = [NodeWithScore(node=TextNode(text=text, id_=f"n{i}")) for i, text in enumerate(DOCS)]
    with RerankPostprocessor(reranker=config, top_n=2) as postprocessor:
        kept = postprocessor.postprocess_nodes(nodes, QueryBundle(QUERY))
        also = await postprocessor.apostprocess_nodes(nodes, QueryBundle(QUERY))
    assert [node.node.node_id for node in kept] == [node.node.node_id for node in also] == ["n2", "n1"]
    assert iam.issued == ["iam-token-1"]


def test_the_wire_equals_the_official_ibm_watsonx_ai_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("ibm_watsonx_ai")
    from ibm_watsonx_ai import Credentials
    from ibm_watsonx_ai.foundation_models import Rerank

    # The SDK refuses plain HTTP and looks the project up before its first call: both servers speak HTTPS under a
    # private CA that both clients trust through SSL_CERT_FILE, as a user's corporate CA would be.
    ca = loopback_ca(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca.ca_file))
    cloud = IAMServer(KEY, tls=ca.server_context, jwt=True)
    try:
        with ProviderEmulator("watsonx", tls=ca.server_context) as emu:
            options = {"project_id": PROJECT, "iam_url": cloud.token_url}
            with load_reranker(
                "watsonx:ibm/slate-125m-english-rtrvr-v2", base_url=emu.base_url, api_key=KEY, options=options
            ) as reranker:
                ours = reranker.rerank(QUERY, DOCS, top_n=3)
            credentials = Credentials(
                url=emu.base_url,
                api_key=KEY,
                platform_url=cloud.platform_url,
                auth_url=cloud.token_url,
            )
            sdk = Rerank("ibm/slate-125m-english-rtrvr-v2", credentials=credentials, project_id=PROJECT)
            theirs = sdk.generate(query=QUERY, inputs=list[Any](DOCS), params={"return_options": {"top_n": 3}})
    finally:
        cloud.stop()
    ours_request, sdk_request = emu.requests
    assert ours_request.path.split("?")[0] == sdk_request.path.split("?")[0] == "/ml/v1/text/rerank"
    assert "version=" in sdk_request.path.split("?")[1]
    assert ours_request.body == sdk_request.body
    assert cloud.grants[0] == cloud.grants[1]  # the same API-key grant at the same IAM endpoint
    assert ours_request.headers["authorization"] == f"Bearer {cloud.issued[0]}"
    assert sdk_request.headers["authorization"] == f"Bearer {cloud.issued[1]}"
    assert [(r.index, round(r.relevance_score, 6)) for r in ours.results] == [
        (r["index"], round(r["score"], 6)) for r in theirs["results"]
    ]
