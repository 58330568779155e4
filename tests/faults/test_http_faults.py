"""Fault injection over real loopback HTTP: every way the emulator can misbehave, sync and async.

Each case asserts the typed error that names what to fix (or the right answer), that the caller's documents were
not mutated, lost or duplicated, and that neither secret (the API key, a caller's secret header) shows up in an
error, its cause or context, a repr, or any log record at DEBUG (rerank_core, httpx and httpcore included).
Retry waits are recorded, not slept, and timeouts are short, so the suite stays fast.
"""

from __future__ import annotations

import copy
import gzip
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from rerank_core import (
    HTTPReranker,
    InvalidRequestError,
    ProviderError,
    RateLimitError,
    RerankConnectionError,
    RerankError,
    RerankResponse,
    RerankTimeoutError,
    ResponseFormatError,
    load_reranker,
)
from tests.support.emulator import Fault, ProviderEmulator
from tests.support.fixtures import StartEmulator
from tests.support.transport import MODES, Mode, RecordedWaits, call

KEY = "sk-faults-7d3c9b1a-TOPSECRET"
HEADER_SECRET = "hdr-secret-5e6f7a8b"
QUERY = "apple pie"


def documents() -> list[dict[str, Any]]:
    return [
        {"text": "apple pie recipe", "id": "a", "metadata": {"tags": ["x"]}},
        {"text": "car repair", "id": "b", "metadata": {"tags": ["y"]}},
        {"text": "pie crust", "id": "c", "metadata": {}},
        {"text": "apple orchard", "id": "d", "metadata": {"n": 1}},
    ]


def results(change: Callable[[list[dict[str, Any]]], object]) -> Callable[[Any], Any]:
    def mutate(payload: Any) -> Any:
        change(payload["results"])
        return payload

    return mutate


def nested(depth: int) -> bytes:
    return b'{"results": ' + b"[" * depth + b"]" * depth + b"}"


@dataclass
class Case:
    faults: list[Fault]
    error: type[RerankError] | None
    """None: the call must succeed with every document."""
    message: str = ""
    sticky: bool = False
    settings: dict[str, Any] = field(default_factory=dict)


TRUNCATED = b'{"results": [{"index": 0, "relevance_score": 0.9}, {"ind'
CASES: dict[str, Case] = {
    "429-storm-with-retry-after": Case(
        [Fault(status=429, headers={"retry-after": "1"})], RateLimitError, "3 attempts", sticky=True
    ),
    "429-then-success": Case([Fault(status=429, headers={"retry-after": "1"})] * 2, None),
    "retry-after-past-the-cap": Case(
        [Fault(status=429, headers={"retry-after": "7200"})], RateLimitError, "max_retry_after=60 s"
    ),
    "5xx-burst-then-success": Case(
        [Fault(status=503), Fault(status=502), Fault(status=500)], None, settings={"max_retries": 3}
    ),
    "5xx-always": Case(
        [Fault(status=503, body={"error": {"message": "overloaded"}})], ProviderError, "overloaded", True
    ),
    "reset-mid-body-once": Case([Fault(cut_after=12)], None),
    "reset-mid-body-always": Case([Fault(cut_after=12)], RerankConnectionError, "could not get an answer", True),
    "dropped-connection-always": Case([Fault(drop_connection=True)], RerankConnectionError, "", True),
    "slow-drip-past-the-timeout": Case(
        [Fault(drip_interval=0.05)], RerankTimeoutError, "timeout=0.3 s", True, {"timeout": 0.3, "max_retries": 1}
    ),
    "slow-headers-past-the-timeout": Case(
        [Fault(delay=1.0)], RerankTimeoutError, "timeout=0.3 s", True, {"timeout": 0.3, "max_retries": 1}
    ),
    "truncated-json": Case([Fault(raw=TRUNCATED)], ResponseFormatError, "not valid JSON"),
    "invalid-json": Case([Fault(raw=b"{results: nope}")], ResponseFormatError, "not valid JSON"),
    "wrong-content-type": Case(
        [Fault(raw=b"<html>maintenance</html>", content_type="text/html")], ResponseFormatError, "text/html"
    ),
    "out-of-range-index": Case([Fault(mutate=results(lambda r: r[0].update(index=9)))], ResponseFormatError, "9"),
    "duplicate-index": Case(
        [Fault(mutate=results(lambda r: r[1].update(index=r[0]["index"])))], ResponseFormatError, "more than once"
    ),
    "bool-index": Case([Fault(mutate=results(lambda r: r[0].update(index=True)))], ResponseFormatError, "index"),
    "string-index": Case([Fault(mutate=results(lambda r: r[0].update(index="0")))], ResponseFormatError, "index"),
    "nan-score": Case(
        [Fault(mutate=results(lambda r: r[0].update(relevance_score=float("nan"))))], ResponseFormatError, "finite"
    ),
    "string-score": Case(
        [Fault(mutate=results(lambda r: r[0].update(relevance_score="0.9")))], ResponseFormatError, "non-numeric"
    ),
    "400-digit-score": Case(
        [Fault(raw=b'{"results": [{"index": 0, "relevance_score": ' + b"9" * 400 + b"}]}")],
        ResponseFormatError,
        "OverflowError",
    ),
    "fewer-results": Case([Fault(mutate=results(lambda r: r.pop()))], ResponseFormatError, "3 scores for 4"),
    "deeply-nested-200": Case([Fault(raw=nested(100_000))], ResponseFormatError, "nested too deeply"),
    "deeply-nested-500": Case([Fault(raw=nested(100_000), status=500)], ProviderError, "HTTP 500", True),
    "corrupt-gzip": Case(
        [Fault(raw=b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + b"\xff" * 20, headers={"content-encoding": "gzip"})],
        ResponseFormatError,
        "could not be decoded",
    ),
    "corrupt-deflate": Case(
        [Fault(raw=b"not deflate at all", headers={"content-encoding": "deflate"})],
        ResponseFormatError,
        "could not be decoded",
    ),
    "gzip-bomb-past-the-size-cap": Case(
        [Fault(raw=gzip.compress(b" " * 2_000_000), headers={"content-encoding": "gzip"})],
        ResponseFormatError,
        "max_response_bytes=100000",
        settings={"max_response_bytes": 100_000},
    ),
    "huge-body-past-the-size-cap": Case(
        [Fault(raw=b'{"results": [], "pad": "' + b"x" * 300_000 + b'"}')],
        ResponseFormatError,
        "max_response_bytes=100000",
        settings={"max_response_bytes": 100_000},
    ),
    "key-echoed-in-error-body": Case(
        [Fault(status=400, body={"error": {"message": f"bad key {KEY} and {HEADER_SECRET}"}})],
        InvalidRequestError,
        "bad key ***",
    ),
}


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    for name in ("rerank_core", "httpx", "httpcore"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def assert_no_secret(*texts: object) -> None:
    for text in texts:
        assert KEY not in str(text)
        assert HEADER_SECRET not in str(text)


def assert_error_clean(error: BaseException) -> None:
    seen: BaseException | None = error
    while seen is not None:  # the whole chain a traceback would print
        assert_no_secret(str(seen), repr(seen))
        seen = seen.__cause__ or seen.__context__


def assert_logs_clean(caplog: pytest.LogCaptureFixture) -> None:
    assert caplog.records, "DEBUG logging was not captured"
    for record in caplog.records:
        assert_no_secret(record.getMessage(), record.args, record.exc_text)


def assert_every_document(response: RerankResponse, sent: list[dict[str, Any]]) -> None:
    assert sorted(r.index for r in response.results) == list(range(len(sent)))
    for result in response.results:
        assert result.document.text == sent[result.index]["text"]
        assert result.document.id == sent[result.index]["id"]


def reranker_for(emu: ProviderEmulator, waits: RecordedWaits, **settings: Any) -> HTTPReranker:
    reranker = HTTPReranker(
        "generic",
        model="m",
        base_url=emu.base_url,
        api_key=KEY,
        headers={"X-Secret-Token": HEADER_SECRET},
        **{"timeout": 5.0, **settings},
    )
    reranker.retry_policy = reranker.retry_policy.__class__(
        max_retries=reranker.max_retries,
        max_retry_after=reranker.retry_policy.max_retry_after,
        sleep=waits.sleep,
        asleep=waits.asleep,
    )
    return reranker


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", list(CASES))
async def test_fault(
    start_emulator: StartEmulator, debug_logs: pytest.LogCaptureFixture, name: str, mode: Mode
) -> None:
    case = CASES[name]
    emu = start_emulator("generic", api_key=KEY)
    if case.sticky:
        emu.fail_always(case.faults[0])
    else:
        emu.fail_next(*case.faults)
    sent = documents()
    before = copy.deepcopy(sent)
    waits = RecordedWaits()
    reranker = reranker_for(emu, waits, **case.settings)
    with reranker:
        if case.error is None:
            assert_every_document(await call(reranker, mode, QUERY, sent), sent)
        else:
            started = time.monotonic()
            with pytest.raises(case.error) as caught:
                await call(reranker, mode, QUERY, sent)
            elapsed = time.monotonic() - started
            assert case.message in str(caught.value)
            assert caught.value.provider == "generic"
            assert caught.value.hint, "every error says what to do"
            assert_error_clean(caught.value)
            assert caught.value.__cause__ is None  # no raw httpx/json error (and its text) rides along
            assert caught.value.__context__ is None
            # the bound docs/client.md promises: timeout x attempts (+ backoff, recorded here, not slept), with slack
            assert elapsed < reranker.timeout * (reranker.max_retries + 1) + 2.0
    assert sent == before  # nothing mutated
    assert_no_secret(repr(reranker))
    assert_logs_clean(debug_logs)


@pytest.mark.parametrize("mode", MODES)
async def test_redirect_to_another_host_is_not_followed_even_by_a_following_client(
    start_emulator: StartEmulator, debug_logs: pytest.LogCaptureFixture, mode: Mode
) -> None:
    """Decision: rerank-core never follows a redirect, so no key (Authorization, Pinecone's Api-Key, a caller's
    secret header) can reach another host; the error names the new location to put in base_url."""
    elsewhere = start_emulator("pinecone")
    target = "http://localhost:" + elsewhere.base_url.rsplit(":", 1)[1] + "/rerank"
    emu = start_emulator("pinecone", api_key=KEY)
    emu.fail_always(Fault(status=307, headers={"location": target}))
    settings: dict[str, Any] = {"model": "bge-reranker-v2-m3", "base_url": emu.base_url, "api_key": KEY}
    sync_client, async_client = httpx.Client(follow_redirects=True), httpx.AsyncClient(follow_redirects=True)
    reranker = HTTPReranker(
        "pinecone",
        **settings,
        headers={"X-Secret-Token": HEADER_SECRET},
        http_client=sync_client,
        async_http_client=async_client,
    )
    with pytest.raises(InvalidRequestError, match="redirects to http://localhost") as caught:
        await call(reranker, mode, QUERY, documents())
    await async_client.aclose()
    sync_client.close()  # noqa: ASYNC212 - a test's cleanup, nothing else runs on this loop
    assert emu.request_count == 1
    assert emu.requests[0].headers["api-key"] == KEY  # it did go to the right host
    assert elsewhere.request_count == 0  # and nowhere else
    assert caught.value.status_code == 307
    assert_error_clean(caught.value)
    assert_logs_clean(debug_logs)


HOSTILE = ["400-digit-score", "deeply-nested-200", "deeply-nested-500", "corrupt-gzip", "truncated-json"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", HOSTILE)
async def test_a_hostile_answer_is_a_member_failure_in_a_fallback_chain(
    start_emulator: StartEmulator, name: str, mode: Mode
) -> None:
    hostile, healthy = start_emulator("generic", api_key=KEY), start_emulator("generic", api_key=KEY)
    hostile.fail_always(CASES[name].faults[0])
    config = {"provider": "generic", "model": "m", "api_key": KEY, "max_retries": 0}
    chain = load_reranker(
        {**config, "base_url": hostile.base_url, "fallback": [{**config, "base_url": healthy.base_url}]}
    )
    sent = documents()
    with chain:
        response = await call(chain, mode, QUERY, sent)
    assert_every_document(response, sent)
    assert hostile.request_count == 1
    assert healthy.request_count == 1


@pytest.mark.parametrize("name", HOSTILE)
async def test_a_hostile_answer_fails_open_with_passthrough(start_emulator: StartEmulator, name: str) -> None:
    hostile, also = start_emulator("generic", api_key=KEY), start_emulator("generic", api_key=KEY)
    hostile.fail_always(CASES[name].faults[0])
    also.fail_always(CASES[name].faults[0])
    config = {"provider": "generic", "model": "m", "api_key": KEY, "max_retries": 0}
    chain = load_reranker(
        {
            **config,
            "base_url": hostile.base_url,
            "on_failure": "passthrough",
            "fallback": [{**config, "base_url": also.base_url}],
        }
    )
    sent = documents()
    with chain:
        response = await chain.arerank(QUERY, sent)
    assert response.passthrough
    assert [r.index for r in response.results] == [0, 1, 2, 3]


def test_the_emulator_really_sends_gzip_when_asked(start_emulator: StartEmulator) -> None:
    """The size-cap case relies on httpx decoding gzip: a well-formed gzip body is read fine."""
    emu = start_emulator("generic", api_key=KEY)
    good = json.dumps({"results": [{"index": i, "relevance_score": 0.5} for i in range(4)]}).encode()
    emu.fail_next(Fault(raw=gzip.compress(good), headers={"content-encoding": "gzip"}))
    with reranker_for(emu, RecordedWaits()) as reranker:
        assert_every_document(reranker.rerank(QUERY, documents()), documents())
