"""The `infinity` dialect against a REAL Infinity server (infinity-emb 0.0.78 from PyPI), not an emulator.

The server runs from its own venv (`.venv-infinity`, installed by scripts/check.sh) on 127.0.0.1 with a tiny
cross-encoder built in this test session, under two served names (so it checks the model name) and an API key,
with `INFINITY_MAX_CLIENT_BATCH_SIZE` lowered to 600 so over-cap answers are cheap to provoke. Two more servers
of the same model are the replicas of one deployment in `base_url`; one of them is killed under load. Without the
executable these tests fail under CI=true and are skipped (and reported as such) elsewhere.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

import httpx
import pytest
from tests.support.infinity_server import EXECUTABLE_ENV, InfinityServer, executable

from rerank_core import AuthenticationError, InvalidRequestError, RerankResponse, load_reranker
from rerank_core.dialects import get_dialect
from rerank_core.http import HTTPReranker

MODEL, OTHER_MODEL = "tiny-ce", "tiny-ce-b"
pytestmark = pytest.mark.integration

KEY = "sk-infinity-test-0123"
SERVER_CAP = 600
QUERY = "which protein increases cancer risk"
WORDS = ["cell", "gene", "protein", "disease", "cancer", "risk", "blood", "brain", "virus", "immune", "study"]
WORDS += ["treatment", "paris", "water", "energy"]


def documents(n: int) -> list[str]:
    """n distinct texts from the tiny model's vocabulary."""
    return [" ".join(WORDS[(i * k + k) % len(WORDS)] for k in range(1, 2 + i % 7)) + f" {i}" for i in range(n)]


@pytest.fixture(scope="module")
def servers(tiny_cross_encoder: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[InfinityServer]]:
    """The main server (two served names), a replica of it, and a replica that one test kills: loaded side by side."""
    if not executable().exists():
        message = f"no infinity_emb at {executable()}: run scripts/check.sh (it installs .venv-infinity)"
        message += f" or set {EXECUTABLE_ENV}"
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(message)
        pytest.skip(message)
    logs = tmp_path_factory.mktemp("infinity")
    running = [
        InfinityServer(tiny_cross_encoder, names, log=logs / f"{role}.log", api_key=KEY, max_batch=SERVER_CAP)
        for role, names in [("main", [MODEL, OTHER_MODEL]), ("replica", [MODEL]), ("stopped", [MODEL])]
    ]
    for each in running:
        each.launch()
    try:
        yield [each.wait_until_healthy() for each in running]
    finally:
        for each in running:
            each.stop()


@pytest.fixture(scope="module")
def server(servers: list[InfinityServer]) -> InfinityServer:
    return servers[0]


@pytest.fixture(scope="module")
def reference_logits(tiny_cross_encoder: str) -> dict[str, float]:
    """sentence-transformers' logits on the same weights, for the documents the tests send."""
    import torch
    from sentence_transformers import CrossEncoder

    model = CrossEncoder(tiny_cross_encoder, device="cpu")
    texts = documents(1200)
    logits = model.predict([(QUERY, text) for text in texts], activation_fn=torch.nn.Identity(), batch_size=64)
    return {text: float(value) for text, value in zip(texts, logits, strict=True)}


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


class Sent:
    """Records each request an httpx client sends (the real server's side is not observable otherwise)."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.ports: list[int | None] = []
        self.answered_ports: list[int | None] = []

    def __call__(self, request: httpx.Request) -> None:
        self.bodies.append(json.loads(request.content))
        self.ports.append(request.url.port)

    def answered(self, response: httpx.Response) -> None:
        self.answered_ports.append(response.request.url.port)

    async def arecord(self, request: httpx.Request) -> None:
        self(request)


_given_clients: list[httpx.Client] = []


@pytest.fixture(autouse=True)
def _close_given_clients() -> Iterator[None]:
    yield
    while _given_clients:
        _given_clients.pop().close()  # a caller's client is the caller's to close, not the reranker's


def reranker(server: InfinityServer, sent: Sent | None = None, **kwargs: Any) -> HTTPReranker:
    kwargs.setdefault("api_key", KEY)
    kwargs.setdefault("base_url", server.base_url)
    if sent is not None:
        _given_clients.append(httpx.Client(event_hooks={"request": [sent], "response": [sent.answered]}))
        kwargs["http_client"] = _given_clients[-1]
    return HTTPReranker("infinity", model=MODEL, timeout=120, **kwargs)


def test_probabilities_match_sentence_transformers(server: InfinityServer, reference_logits: dict[str, float]) -> None:
    docs = documents(20)
    with reranker(server) as client:
        response = client.rerank(QUERY, docs)
    assert response.score_kind == "probability"
    assert sorted(r.index for r in response.results) == list(range(20))
    assert [r.relevance_score for r in response.results] == sorted(
        (r.relevance_score for r in response.results), reverse=True
    )
    for result in response.results:
        assert result.relevance_score == pytest.approx(sigmoid(reference_logits[docs[result.index]]), abs=1e-5)
    assert response.model == MODEL


def test_raw_scores_are_the_models_logits(server: InfinityServer, reference_logits: dict[str, float]) -> None:
    docs = documents(20)
    with (
        reranker(server, options={"raw_scores": True}) as raw,
        reranker(server, options={"raw_scores": True}, normalize="sigmoid") as normalized,
    ):
        logits, probabilities = raw.rerank(QUERY, docs), normalized.rerank(QUERY, docs)
    assert (logits.score_kind, probabilities.score_kind) == ("logit", "probability")
    for a, b in zip(logits.results, probabilities.results, strict=True):
        assert a.relevance_score == pytest.approx(reference_logits[docs[a.index]], abs=1e-5)
        assert b.relevance_score == pytest.approx(sigmoid(reference_logits[docs[b.index]]), abs=1e-5)


def test_top_n_is_sent_and_the_rest_accounted_for(server: InfinityServer) -> None:
    docs, sent = documents(20), Sent()
    with reranker(server) as full, reranker(server, sent) as cut:
        everything, top = full.rerank(QUERY, docs), cut.rerank(QUERY, docs, top_n=3)
    assert sent.bodies[0]["top_n"] == 3
    assert sent.bodies[0]["return_documents"] is False
    assert [r.index for r in top.results] == [r.index for r in everything.results[:3]]
    assert sorted(d.index for d in top.dropped) == sorted(r.index for r in everything.results[3:])


def test_usage_prompt_tokens_counts_characters(server: InfinityServer) -> None:
    docs = documents(5)
    with reranker(server) as client:
        usage = client.rerank(QUERY, docs).usage
    assert usage.prompt_tokens == len(QUERY) * len(docs) + sum(len(doc) for doc in docs)


def test_1200_documents_split_across_requests(server: InfinityServer, reference_logits: dict[str, float]) -> None:
    docs, sent = documents(1200), Sent()
    with reranker(server, sent, max_documents_per_request=500) as client:
        response = client.rerank(QUERY, docs, top_n=10)
    assert sorted(len(body["documents"]) for body in sent.bodies) == [200, 500, 500]
    best = sorted((sigmoid(logit) for logit in reference_logits.values()), reverse=True)[:10]
    assert [r.relevance_score for r in response.results] == pytest.approx(best, abs=1e-5)
    for result in response.results:  # each is the score of its own document: ids survive the split
        assert result.relevance_score == pytest.approx(sigmoid(reference_logits[docs[result.index]]), abs=1e-5)
    assert len(response.dropped) == 1190


def test_the_real_over_cap_answer_is_recognised(server: InfinityServer) -> None:
    body = {"model": MODEL, "query": QUERY, "documents": documents(SERVER_CAP + 1)}
    answer = httpx.post(f"{server.base_url}/rerank", json=body, headers={"Authorization": f"Bearer {KEY}"})
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["type"] == "too_long"
    assert get_dialect("infinity").is_batch_too_large(answer.status_code, answer.text)


def test_an_over_cap_batch_is_split_on_the_servers_422(server: InfinityServer) -> None:
    docs, sent = documents(1200), Sent()
    with reranker(server, sent, max_retries=0) as client:  # the client's own cap (2,048) is above the server's
        response = client.rerank(QUERY, docs, top_n=5)
    assert len(sent.bodies[0]["documents"]) == 1200
    # Split once, in halves the server takes: every document is sent again, none twice.
    assert sorted(len(body["documents"]) for body in sent.bodies[1:]) == [SERVER_CAP, SERVER_CAP]
    assert sorted(text for body in sent.bodies[1:] for text in body["documents"]) == sorted(docs)
    assert len(response.results) == 5
    assert len(response.dropped) == 1200 - 5


def test_a_wrong_model_name_is_a_typed_error_naming_the_served_models(server: InfinityServer) -> None:
    client = load_reranker("infinity:no-such-model", base_url=server.base_url, api_key=KEY)
    with client, pytest.raises(InvalidRequestError) as caught:
        client.rerank(QUERY, documents(2))
    error = caught.value
    assert (error.provider, error.status_code) == ("infinity", 400)
    assert "no-such-model" in str(error)
    assert MODEL in str(error)


def test_a_wrong_key_is_an_authentication_error_without_the_key(server: InfinityServer) -> None:
    with reranker(server, api_key="sk-wrong-key-9876") as client, pytest.raises(AuthenticationError) as caught:
        client.rerank(QUERY, documents(2))
    assert caught.value.status_code == 401
    assert "sk-wrong-key-9876" not in str(caught.value)


async def test_async_ranking_matches_sync(server: InfinityServer) -> None:
    docs, sent = documents(40), Sent()
    async_client = httpx.AsyncClient(event_hooks={"request": [sent.arecord]})
    with reranker(server) as sync_client:
        expected = sync_client.rerank(QUERY, docs, top_n=7)
    async with HTTPReranker(
        "infinity",
        model=MODEL,
        base_url=server.base_url,
        api_key=KEY,
        max_documents_per_request=16,
        async_http_client=async_client,
    ) as client:
        response = await client.arerank(QUERY, docs, top_n=7)
    await async_client.aclose()
    assert sorted(len(body["documents"]) for body in sent.bodies) == [8, 16, 16]
    assert [r.index for r in response.results] == [r.index for r in expected.results]
    assert [r.relevance_score for r in response.results] == pytest.approx([r.relevance_score for r in expected.results])


def assert_scores_are_the_models(
    response: RerankResponse, docs: list[str], reference_logits: dict[str, float], n: int
) -> None:
    assert len(response.results) == n
    for result in response.results:
        assert result.relevance_score == pytest.approx(sigmoid(reference_logits[docs[result.index]]), abs=1e-5)


def test_the_batches_of_one_call_spread_over_two_real_replicas(
    servers: list[InfinityServer], reference_logits: dict[str, float]
) -> None:
    main, replica, _ = servers
    docs, sent = documents(1200), Sent()
    urls = [main.base_url, replica.base_url]
    with reranker(main, sent, base_url=urls, max_documents_per_request=100) as client:
        response = client.rerank(QUERY, docs)
    per_port = Counter(sent.ports)
    assert set(per_port) == {main.port, replica.port}
    assert min(per_port.values()) >= 3, per_port  # equal servers take turns: neither is left idle
    assert_scores_are_the_models(response, docs, reference_logits, 1200)


async def test_async_batches_spread_over_two_real_replicas(
    servers: list[InfinityServer], reference_logits: dict[str, float]
) -> None:
    main, replica, _ = servers
    docs, sent = documents(64), Sent()
    async_client = httpx.AsyncClient(event_hooks={"request": [sent.arecord]})
    urls = [main.base_url, replica.base_url]
    async with reranker(main, base_url=urls, max_documents_per_request=8, async_http_client=async_client) as client:
        response = await client.arerank(QUERY, docs)
    await async_client.aclose()
    assert set(sent.ports) == {main.port, replica.port}
    assert_scores_are_the_models(response, docs, reference_logits, 64)


def test_a_real_replica_killed_under_load_loses_no_call(
    servers: list[InfinityServer], reference_logits: dict[str, float]
) -> None:
    main, _, stopped = servers
    docs, sent, calls = documents(20), Sent(), 60
    urls = [main.base_url, stopped.base_url]
    with (
        reranker(main, sent, base_url=urls, max_documents_per_request=5) as client,
        ThreadPoolExecutor(max_workers=4) as pool,
    ):
        futures = [pool.submit(client.rerank, QUERY, docs) for _ in range(calls)]
        sent_before_stop = 0
        for done, future in enumerate(as_completed(futures), start=1):
            if done == calls // 4:
                stopped.kill()
                sent_before_stop = len(sent.ports)
            assert_scores_are_the_models(future.result(), docs, reference_logits, 20)
    assert stopped.port in sent.answered_ports  # it served its share while it ran
    # some requests met the dead server (refused, or cut off in flight), and their calls still succeeded above
    assert sent.ports.count(stopped.port) > sent.answered_ports.count(stopped.port)
    after = sent.ports[sent_before_stop:]
    # its circuit opens after a few failures: nearly every request after the kill goes to the live server
    assert after.count(stopped.port) < len(after) / 4, Counter(after)
