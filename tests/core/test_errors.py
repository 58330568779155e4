"""Typed errors from real HTTP answers: the right class, the provider's own words, and never the API key."""

from __future__ import annotations

import logging
import pickle
from typing import Any

import pytest
from tests.support.emulator import Fault, ProviderEmulator
from tests.support.transport import API_KEY, MODES, Mode, RecordedWaits, call, make_reranker

from rerank_core import (
    AuthenticationError,
    InvalidRequestError,
    ProviderError,
    RateLimitError,
    RerankError,
    RerankTimeoutError,
)
from rerank_core.http.error_mapping import Scrubber, provider_message

QUERY = "apple pie"
DOCS = ["apple pie", "car"]


@pytest.mark.parametrize(
    ("status", "error", "hint"),
    [
        (400, InvalidRequestError, "check the model name and options"),
        (401, AuthenticationError, "RERANK_API_KEY"),
        (403, AuthenticationError, "RERANK_API_KEY"),
        (402, InvalidRequestError, "rejected the request"),
        (404, InvalidRequestError, "base_url"),
        (408, RerankTimeoutError, "timed out"),
        (409, ProviderError, "conflict"),
        (422, InvalidRequestError, "check the model name and options"),
        (429, RateLimitError, "max_concurrency"),
        (500, ProviderError, "retry later"),
        (503, ProviderError, "retry later"),
    ],
)
async def test_status_maps_to_a_typed_error(
    emu: ProviderEmulator, status: int, error: type[RerankError], hint: str
) -> None:
    emu.fail_always(Fault(status=status, headers={"x-request-id": "req-123"}))
    with make_reranker(emu, max_retries=0) as reranker, pytest.raises(error) as caught:
        reranker.rerank(QUERY, DOCS)
    err = caught.value
    assert type(err) is error
    assert (err.provider, err.status_code, err.request_id) == ("generic", status, "req-123")
    assert "injected fault" in err.message  # the emulator's own error message, read from its body
    assert hint in str(err)
    assert str(err).startswith("[generic] injected fault (HTTP")


async def test_wrong_api_key_is_an_authentication_error(emu: ProviderEmulator) -> None:
    with make_reranker(emu, api_key="sk-wrong-key-000") as reranker, pytest.raises(AuthenticationError) as caught:
        reranker.rerank(QUERY, DOCS)
    assert caught.value.status_code == 401
    assert "invalid api key" in str(caught.value)
    assert emu.request_count == 1


async def test_schema_rejection_carries_the_provider_message(emu: ProviderEmulator) -> None:
    # `truncate` is checked by the provider (the client forwards the option as documented).
    with make_reranker(emu, options={"truncate": "middle"}) as reranker, pytest.raises(InvalidRequestError) as caught:
        reranker.rerank(QUERY, DOCS)
    assert caught.value.status_code == 422
    assert "truncate must be none, start or end" in str(caught.value)


async def test_redirects_are_not_followed(emu: ProviderEmulator) -> None:
    emu.fail_next(Fault(status=307, body={}, headers={"location": "https://elsewhere.example/v1/rerank"}))
    with make_reranker(emu) as reranker, pytest.raises(InvalidRequestError, match=r"elsewhere\.example") as caught:
        reranker.rerank(QUERY, DOCS)
    assert caught.value.status_code == 307
    assert emu.request_count == 1


@pytest.mark.parametrize("mode", MODES)
async def test_echoed_api_key_is_scrubbed_everywhere(
    emu: ProviderEmulator, mode: Mode, caplog: pytest.LogCaptureFixture
) -> None:
    echo = {"error": {"message": f"key {API_KEY} is not allowed; header was Bearer {API_KEY}"}}
    emu.fail_next(Fault(status=503, body=echo), Fault(status=403, body=echo, headers={"x-request-id": API_KEY}))
    waits = RecordedWaits()
    with caplog.at_level(logging.DEBUG), make_reranker(emu, waits=waits) as reranker:
        with pytest.raises(AuthenticationError) as caught:
            await call(reranker, mode, QUERY, DOCS)
        shown = [str(caught.value), repr(caught.value), repr(reranker), caught.value.request_id or ""]
    # httpcore's own DEBUG trace prints response headers verbatim, echo included; ours must not.
    shown += [record.getMessage() for record in caplog.records if record.name.startswith("rerank_core")]
    assert all(API_KEY not in text for text in shown)
    assert "key *** is not allowed; header was Bearer ***" in str(caught.value)
    assert any("retry 1 of 2" in record.getMessage() for record in caplog.records)


async def test_no_log_record_of_any_library_carries_the_key(
    emu: ProviderEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    emu.fail_next(Fault(status=500))
    with caplog.at_level(logging.DEBUG), make_reranker(emu, waits=RecordedWaits()) as reranker:
        reranker.rerank(QUERY, DOCS)
    assert len(caplog.records) > 5  # httpx, httpcore and rerank_core all logged
    assert all(API_KEY not in record.getMessage() for record in caplog.records)


async def test_secret_custom_headers_are_scrubbed_too(emu: ProviderEmulator) -> None:
    token = "tok-abcdef-123456"
    emu.fail_next(Fault(status=400, body={"message": f"bad x-api-token {token}"}))
    reranker = make_reranker(emu, headers={"x-api-token": token})
    with reranker, pytest.raises(InvalidRequestError) as caught:
        reranker.rerank(QUERY, DOCS)
    assert token not in str(caught.value)
    assert "bad x-api-token ***" in str(caught.value)


def test_repr_shows_settings_but_not_the_key(emu: ProviderEmulator) -> None:
    with make_reranker(emu) as reranker:
        text = repr(reranker)
    assert API_KEY not in text
    assert "provider='generic'" in text
    assert "model='test-model'" in text
    assert emu.base_url in text


def test_errors_survive_pickling(emu: ProviderEmulator) -> None:
    emu.fail_always(Fault(status=429, headers={"x-request-id": "r-9"}))
    with make_reranker(emu, max_retries=0) as reranker, pytest.raises(RateLimitError) as caught:
        reranker.rerank(QUERY, DOCS)
    copy = pickle.loads(pickle.dumps(caught.value))
    assert type(copy) is RateLimitError
    assert (copy.status_code, copy.request_id, str(copy)) == (429, "r-9", str(caught.value))


@pytest.mark.parametrize(
    ("payload", "raw", "expected"),
    [
        ({"error": {"message": "openai style", "type": "x"}, "message": "no"}, "", "openai style"),
        ({"message": "cohere style"}, "", "cohere style"),
        ({"detail": "voyage style"}, "", "voyage style"),
        (
            {"detail": [{"loc": ["body", "query"], "msg": "field required"}, {"msg": "too long"}]},
            "",
            "field required; too long",
        ),
        ({"error": "tei style", "error_type": "Validation"}, "", "tei style"),
        (None, "upstream connect error", "upstream connect error"),
        (None, "x" * 1000, "x" * 1000),  # whole: errors cut it only after scrubbing
        (None, "   ", "(empty body)"),
        ({"unexpected": True}, '{"unexpected": true}', '{"unexpected": true}'),
    ],
)
def test_provider_message_order(payload: Any, raw: str, expected: str) -> None:
    assert provider_message(payload, raw) == expected


def test_scrubber_replaces_every_secret_and_ignores_tiny_ones() -> None:
    scrub = Scrubber(["sk-long-secret", None, "ab", "sk-long"])
    assert scrub("sk-long-secret / sk-long / ab") == "*** / *** / ab"
