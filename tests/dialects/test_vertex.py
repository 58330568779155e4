"""Google Vertex AI ranking end to end against its loopback emulator, with Application Default Credentials from a
service-account file whose token endpoint is a loopback server: tokens, caps, errors, and secrets that stay put."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.support.dialect_apps import VERTEX_PROJECT
from tests.support.emulator import Fault, ProviderEmulator, overlap_score
from tests.support.fixtures import StartEmulator

from rerank_core import (
    AuthenticationError,
    ConfigurationError,
    HTTPReranker,
    InvalidRequestError,
    RateLimitError,
    ResponseFormatError,
    load_reranker,
)
from rerank_core.dialects.vertex import VertexDialect

pytest.importorskip("google.auth")
from tests.support.google_auth import TokenServer, service_account_file

MODEL = "semantic-ranker-default@latest"
QUERY = "red apple pie"
DOCS = ["blue sky", "red apple", "apple pie red", "red car", "apple tree"]
EXPECTED_ORDER = [2, 1, 3, 4, 0]
ENDPOINT = f"/v1/projects/{VERTEX_PROJECT}/locations/global/rankingConfigs/default_ranking_config:rank"


@pytest.fixture
def tokens() -> Iterator[TokenServer]:
    server = TokenServer()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def adc(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tokens: TokenServer) -> str:
    """ADC from a service-account file only: no gcloud config of this machine, no metadata server."""
    path, pem = service_account_file(tmp_path, tokens.token_uri, VERTEX_PROJECT)
    for name in ("GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT", "GOOGLE_CLOUD_QUOTA_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.setenv("NO_GCE_CHECK", "True")
    return pem


def vertex(emu: ProviderEmulator, **kwargs: Any) -> HTTPReranker:
    reranker = load_reranker(f"vertex:{MODEL}", base_url=emu.base_url, max_retries=0, **kwargs)
    assert isinstance(reranker, HTTPReranker)
    return reranker


def test_the_endpoint_names_the_project_and_location(monkeypatch: pytest.MonkeyPatch) -> None:
    default = load_reranker("vertex")
    assert isinstance(default, HTTPReranker)
    assert default.url == f"https://discoveryengine.googleapis.com{ENDPOINT}"  # project from the credentials
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "env-project")
    from_env = load_reranker("vertex", options={"location": "eu"})
    assert isinstance(from_env, HTTPReranker)
    assert from_env.url.endswith("/v1/projects/env-project/locations/eu/rankingConfigs/default_ranking_config:rank")
    given = load_reranker("vertex", options={"project": "opt-project"}, base_url="https://proxy.example.com/v1")
    assert isinstance(given, HTTPReranker)
    assert given.url == (
        "https://proxy.example.com/v1/projects/opt-project/locations/global/rankingConfigs/default_ranking_config:rank"
    )
    full = "https://eu-discoveryengine.googleapis.com/v1/projects/p/locations/eu/rankingConfigs/my_config:rank"
    assert VertexDialect().url(full, {"project": "p"}) == full


def test_no_project_anywhere_is_a_configuration_error(tmp_path: Path, tokens: TokenServer) -> None:
    info = json.loads(Path(service_account_file(tmp_path, tokens.token_uri, "x")[0]).read_text())
    del info["project_id"]
    path = tmp_path / "no-project.json"
    path.write_text(json.dumps(info))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))
        with pytest.raises(ConfigurationError, match="project") as caught:
            load_reranker("vertex")
    assert "GOOGLE_CLOUD_PROJECT" in str(caught.value)


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_end_to_end_with_a_token_fetched_once_and_reused(
    start_emulator: StartEmulator, tokens: TokenServer, mode: str
) -> None:
    emu = start_emulator("vertex", api_key="ya29.token-1")
    with vertex(emu) as reranker:
        for _ in range(3):
            if mode == "sync":
                response = reranker.rerank(QUERY, DOCS, top_n=3)
            else:
                response = await reranker.arerank(QUERY, DOCS, top_n=3)
    assert [r.index for r in response.results] == EXPECTED_ORDER[:3]
    assert response.results[0].relevance_score == overlap_score(QUERY, DOCS[2])
    assert (response.provider, response.model, response.score_kind) == ("vertex", MODEL, "unknown")
    assert tokens.issued == ["ya29.token-1"]
    assert tokens.grants[0]["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
    assert emu.request_count == 3
    request = emu.requests[0]
    assert request.path == ENDPOINT
    assert request.headers["authorization"] == "Bearer ya29.token-1"
    assert request.body == {
        "model": MODEL,
        "query": QUERY,
        "records": [{"id": str(i), "content": text} for i, text in enumerate(DOCS)],
        "topN": 3,
        "ignoreRecordDetailsInResponse": True,
    }


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_token_near_expiry_is_refreshed_before_use(
    start_emulator: StartEmulator, tokens: TokenServer, mode: str
) -> None:
    # The first token has 60 s left: inside google-auth's refresh margin, so the next request fetches a new one,
    # which (an hour long) is then reused.
    tokens.lifetimes = [60]
    emu = start_emulator("vertex")
    with vertex(emu) as reranker:
        for _ in range(3):
            if mode == "sync":
                reranker.rerank(QUERY, DOCS)
            else:
                await reranker.arerank(QUERY, DOCS)
    sent = [request.headers["authorization"] for request in emu.requests]
    assert tokens.issued == ["ya29.token-1", "ya29.token-2", "ya29.token-3"][: len(tokens.issued)]
    assert sent[-1] == sent[-2] == f"Bearer {tokens.issued[-1]}"
    assert len(tokens.issued) == 2


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_more_than_200_records_are_split_and_merged_globally_with_one_token(
    start_emulator: StartEmulator, tokens: TokenServer, mode: str
) -> None:
    emu = start_emulator("vertex")
    docs = [f"filler text {i}" for i in range(450)]
    docs[420] = "red apple pie"
    docs[7] = "red apple"
    with vertex(emu) as reranker:  # the three batches go out at once: the first token is fetched once for all
        if mode == "sync":
            response = reranker.rerank(QUERY, docs, top_n=2)
        else:
            response = await reranker.arerank(QUERY, docs, top_n=2)
    assert sorted(len(r.body["records"]) for r in emu.requests) == [50, 200, 200]
    assert [r.index for r in response.results] == [420, 7]
    assert tokens.issued == ["ya29.token-1"]


def test_a_record_without_score_scored_zero_and_titles_come_from_metadata(start_emulator: StartEmulator) -> None:
    emu = start_emulator("vertex", scorer=lambda q, t: 0.0 if "sky" in t else overlap_score(q, t))
    docs = [{"text": "blue sky", "heading": "Weather"}, {"text": "red apple", "heading": "Fruit"}]
    with vertex(emu, options={"title_field": "heading", "user_labels": {"team": "search"}}) as reranker:
        response = reranker.rerank(QUERY, docs)
    assert [(r.index, r.relevance_score) for r in response.results] == [
        (1, overlap_score(QUERY, "Fruit red apple")),
        (0, 0.0),
    ]
    body = emu.requests[0].body
    assert body["records"][0] == {"id": "0", "title": "Weather", "content": "blue sky"}
    assert body["userLabels"] == {"team": "search"}


@pytest.mark.parametrize(
    "mutate",
    [
        lambda p: {"records": [*p["records"], {"id": "99", "score": 0.5}]},
        lambda p: {"records": [*p["records"], p["records"][0]]},
        lambda p: {"records": [{**p["records"][0], "score": "high"}]},
        lambda p: {"nothing": []},
    ],
    ids=["unknown id", "duplicate id", "string score", "no records"],
)
def test_a_broken_answer_is_a_response_format_error(start_emulator: StartEmulator, mutate: Any) -> None:
    emu = start_emulator("vertex")
    emu.fail_next(Fault(mutate=mutate))
    with vertex(emu) as reranker, pytest.raises(ResponseFormatError) as caught:
        reranker.rerank(QUERY, DOCS)
    assert caught.value.provider == "vertex"


@pytest.mark.parametrize(
    ("status", "kind"), [(403, AuthenticationError), (429, RateLimitError), (400, InvalidRequestError)]
)
def test_google_error_shapes_map_to_typed_errors_and_the_chain_moves_on(
    start_emulator: StartEmulator, status: int, kind: type[Exception]
) -> None:
    emu = start_emulator("vertex")
    backup = start_emulator("cohere")
    emu.fail_always(Fault(status=status, body=emu.app.error_body(status, "emulated: Permission or quota or input")))
    with vertex(emu) as reranker, pytest.raises(kind) as caught:
        reranker.rerank(QUERY, DOCS)
    assert "emulated: Permission" in str(caught.value)
    if kind is AuthenticationError:
        assert "GOOGLE_APPLICATION_CREDENTIALS" in str(caught.value)
    chain = load_reranker(
        {
            "provider": "vertex",
            "base_url": emu.base_url,
            "max_retries": 0,
            "fallback": [{"provider": "cohere", "model": "m", "base_url": backup.base_url, "api_key": "k-0000"}],
        }
    )
    with chain:
        assert chain.rerank(QUERY, DOCS, top_n=1).provider == "cohere"


def test_a_refused_token_exchange_is_an_authentication_error_and_the_chain_moves_on(
    start_emulator: StartEmulator, tokens: TokenServer
) -> None:
    tokens.fail_with = (400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
    emu = start_emulator("vertex")
    with vertex(emu) as reranker, pytest.raises(AuthenticationError, match="could not be refreshed"):
        reranker.rerank(QUERY, DOCS)
    assert emu.request_count == 0
    backup = start_emulator("cohere")
    spec = {"provider": "vertex", "base_url": emu.base_url}
    fallback = [{"provider": "cohere", "model": "m", "base_url": backup.base_url, "api_key": "k-0000"}]
    with load_reranker({**spec, "fallback": fallback}) as chain:
        assert chain.rerank(QUERY, DOCS).provider == "cohere"


@pytest.mark.slow
def test_missing_credentials_with_a_project_given_fail_on_use(
    start_emulator: StartEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS")
    emu = start_emulator("vertex")
    with (
        vertex(emu, options={"project": VERTEX_PROJECT}) as reranker,
        pytest.raises(AuthenticationError, match="no usable Google credentials"),
    ):
        reranker.rerank(QUERY, DOCS)
    with pytest.raises(ConfigurationError, match="no usable Google credentials"):
        load_reranker("vertex")  # no project either: the credentials were needed to build the endpoint


def test_tokens_and_keys_never_appear_in_reprs_logs_or_errors(
    start_emulator: StartEmulator, adc: str, caplog: pytest.LogCaptureFixture
) -> None:
    emu = start_emulator("vertex")
    caplog.set_level(logging.DEBUG)  # every logger: google-auth's and httpx's too
    with vertex(emu) as reranker:
        reranker.rerank(QUERY, DOCS)
        assert emu.requests[0].headers["authorization"].startswith("Bearer ya29.")
        emu.fail_always(Fault(status=401, body=emu.app.error_body(401, "Request had invalid authentication")))
        with pytest.raises(AuthenticationError) as caught:
            reranker.rerank(QUERY, DOCS)
        seen = " ".join(
            [
                repr(reranker),
                repr(reranker._replicas.replicas[0].auth),
                str(caught.value),
                caplog.text,
                str(vars(reranker)),
            ]
        )
    assert "ya29." not in seen
    assert adc.splitlines()[1] not in seen  # a line of the private key


def test_the_cli_reranks_through_vertex(start_emulator: StartEmulator, tmp_path: Path) -> None:
    from tests.cli.helpers import run

    emu = start_emulator("vertex", api_key="ya29.token-1")
    docs = tmp_path / "docs.txt"
    docs.write_text("\n".join(DOCS) + "\n")
    done = run(QUERY, str(docs), "--provider", f"vertex:{MODEL}", "--base-url", emu.base_url, "--format", "json")
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert [row["index"] for row in payload["results"]][:3] == EXPECTED_ORDER[:3]
    assert payload["provider"] == "vertex"


def test_the_llamaindex_wrapper_reranks_through_vertex(start_emulator: StartEmulator) -> None:
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    from rerank_llamaindex import RerankPostprocessor

    emu = start_emulator("vertex")
    post = RerankPostprocessor(reranker={"provider": "vertex", "base_url": emu.base_url}, top_n=2)
    nodes = [NodeWithScore(node=TextNode(text=text)) for text in DOCS]
    ranked = post.postprocess_nodes(nodes, QueryBundle(QUERY))
    assert [node.node.get_content() for node in ranked] == [DOCS[2], DOCS[1]]


def test_the_wire_equals_the_official_discoveryengine_rest_client(start_emulator: StartEmulator) -> None:
    discoveryengine = pytest.importorskip("google.cloud.discoveryengine_v1")
    from google.auth.credentials import AnonymousCredentials

    emu = start_emulator("vertex")
    docs = [{"text": text, "title": f"T{i}"} for i, text in enumerate(DOCS)]
    with vertex(emu, options={"title_field": "title", "user_labels": {"team": "search"}}) as reranker:
        ours = reranker.rerank(QUERY, docs, top_n=2)
    client = discoveryengine.RankServiceClient(
        transport="rest",
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options={"api_endpoint": emu.base_url},
    )
    theirs = client.rank(
        request=discoveryengine.RankRequest(
            ranking_config=f"projects/{VERTEX_PROJECT}/locations/global/rankingConfigs/default_ranking_config",
            model=MODEL,
            query=QUERY,
            top_n=2,
            ignore_record_details_in_response=True,
            user_labels={"team": "search"},
            records=[
                discoveryengine.RankingRecord(id=str(i), title=f"T{i}", content=text) for i, text in enumerate(DOCS)
            ],
        )
    )
    ours_request, sdk_request = emu.requests
    assert ours_request.path == sdk_request.path.split("?", 1)[0] == ENDPOINT  # the SDK adds `$alt=json`
    assert ours_request.body == sdk_request.body
    assert [r.index for r in ours.results] == [int(record.id) for record in theirs.records]
    # The SDK's record score is a proto float (32 bits): close to ours, not equal.
    pairs = zip([r.relevance_score for r in ours.results], [record.score for record in theirs.records], strict=True)
    assert all(abs(a - b) < 1e-6 for a, b in pairs)


def test_an_api_key_is_refused_rather_than_silently_unused() -> None:
    with pytest.raises(ConfigurationError, match="takes no api_key") as caught:
        load_reranker("vertex", api_key="AIza-not-for-ranking-1234")
    assert "AIza-not-for-ranking-1234" not in str(caught.value)
