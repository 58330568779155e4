"""Bad settings of the HTTP client fail early with a typed error that names the setting and never echoes a key;
a key pasted with surrounding whitespace just works; closing a reranker mid-call lets the call finish."""

from __future__ import annotations

import asyncio
import math
import threading
from typing import Any

import pytest

from rerank_core import ConfigurationError, HTTPReranker, RerankResponse
from rerank_core.limits import MAX_CONCURRENCY, MAX_RETRIES, MAX_TIMEOUT
from tests.support.emulator import overlap_score
from tests.support.fixtures import StartEmulator

KEY = "sk-settings-1a2b3c4d5e"
URL = "http://127.0.0.1:9"


def build(**settings: Any) -> HTTPReranker:
    return HTTPReranker("generic", **{"model": "m", "base_url": URL, "api_key": KEY, **settings})


@pytest.mark.parametrize("pasted", [f"{KEY}\n", f"  {KEY} ", f"\t{KEY}\r\n"])
def test_a_key_with_surrounding_whitespace_is_stripped(start_emulator: StartEmulator, pasted: str) -> None:
    emu = start_emulator("generic", api_key=KEY)
    with build(base_url=emu.base_url, api_key=pasted) as reranker:
        assert len(reranker.rerank("q", ["a", "b"]).results) == 2
    assert emu.requests[0].headers["authorization"] == f"Bearer {KEY}"


@pytest.mark.parametrize(
    "bad", [f"sk-\u200bsettings-{KEY}", f"sk-{KEY}\x00", f"sk-se\nttings-{KEY}", f"sk-séttings-{KEY}", "\x7fsk-abc"]
)
def test_a_key_with_invisible_or_control_characters_is_refused_without_echo(bad: str) -> None:
    with pytest.raises(ConfigurationError, match="API key from api_key") as caught:
        build(api_key=bad)
    assert bad.strip() not in str(caught.value)
    assert KEY not in str(caught.value)
    assert KEY not in repr(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None


def test_a_bad_key_from_the_environment_is_named_by_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COHERE_API_KEY", f"{KEY}\u200b")
    with pytest.raises(ConfigurationError, match="COHERE_API_KEY") as caught:
        HTTPReranker("cohere", model="rerank-v3.5")
    assert KEY not in str(caught.value)


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"X-Count": 1}, r"headers\['X-Count'\] must be a str, not int"),
        ({"X Bad": "v"}, "'X Bad' is not a valid HTTP header name"),
        ({"X-Bad:": "v"}, "not a valid HTTP header name"),
        ({1: "v"}, "1 is not a valid HTTP header name"),
        ({"X-Secret": f"{KEY}\n{KEY}"}, r"headers\['X-Secret'\] contains a control"),
        (["X-A", "v"], "headers must be a mapping"),
    ],
)
def test_bad_headers_are_a_configuration_error_naming_the_setting(headers: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as caught:
        build(headers=headers)
    assert KEY not in str(caught.value)


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("timeout", math.inf),
        ("timeout", math.nan),
        ("timeout", 0),
        ("timeout", MAX_TIMEOUT + 1),
        ("timeout", "30"),
        ("max_retries", 10**6),
        ("max_retries", MAX_RETRIES + 1),
        ("max_retries", -1),
        ("max_concurrency", MAX_CONCURRENCY + 1),
        ("max_connections", 0),
        ("max_connections", MAX_CONCURRENCY + 1),
        ("max_response_bytes", 0),
        ("max_retry_after", math.inf),
        ("max_documents_per_request", 0),
    ],
)
def test_out_of_range_settings_are_refused(setting: str, value: object) -> None:
    with pytest.raises(ConfigurationError, match=setting):
        build(**{setting: value})


def test_the_upper_bounds_themselves_are_accepted() -> None:
    reranker = build(timeout=MAX_TIMEOUT, max_retries=MAX_RETRIES, max_connections=MAX_CONCURRENCY)
    assert reranker.timeout == MAX_TIMEOUT
    assert reranker.max_retries == MAX_RETRIES


def test_credentials_in_base_url_go_out_as_basic_auth_and_never_in_logs(
    start_emulator: StartEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    emu = start_emulator("tei")  # a self-hosted server without an API key, behind a proxy with basic auth
    caplog.set_level("DEBUG")
    base = emu.base_url.replace("http://", "http://user:pw-very-secret@")
    with HTTPReranker("tei", base_url=base) as reranker:
        reranker.rerank("q", ["a"])
        assert "pw-very-secret" not in repr(reranker)
    assert emu.requests[0].headers["authorization"].startswith("Basic ")
    assert all("pw-very-secret" not in record.getMessage() for record in caplog.records)


class Gate:
    """A scorer that holds the emulator's answer until released, and says when a request has arrived."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.release = threading.Event()

    def __call__(self, query: str, text: str) -> float:
        self.arrived.set()
        self.release.wait(timeout=30)
        return overlap_score(query, text)


def test_closing_during_a_sync_call_lets_the_call_finish(start_emulator: StartEmulator) -> None:
    """Decision: `close()` never breaks a running call; its client closes when the last call on it ends."""
    gate = Gate()
    emu = start_emulator("generic", api_key=KEY, scorer=gate)
    reranker = build(base_url=emu.base_url)
    outcome: list[RerankResponse | BaseException] = []

    def run() -> None:
        try:
            outcome.append(reranker.rerank("q", ["a", "b"]))
        except BaseException as error:  # collected, asserted below
            outcome.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    assert gate.arrived.wait(timeout=30)
    reranker.close()
    gate.release.set()
    thread.join(timeout=30)
    assert isinstance(outcome[0], RerankResponse)
    assert len(outcome[0].results) == 2
    assert len(reranker.rerank("q", ["c"]).results) == 1  # and it reopens afterwards
    reranker.close()


@pytest.mark.parametrize("closer", ["close", "aclose"])
async def test_closing_during_an_async_call_lets_the_call_finish(start_emulator: StartEmulator, closer: str) -> None:
    gate = Gate()
    emu = start_emulator("generic", api_key=KEY, scorer=gate)
    reranker = build(base_url=emu.base_url, max_documents_per_request=1)
    task = asyncio.ensure_future(reranker.arerank("q", ["a", "b", "c"]))
    assert await asyncio.to_thread(gate.arrived.wait, 30)
    if closer == "close":
        reranker.close()
    else:
        await reranker.aclose()
    gate.release.set()
    response = await task
    assert sorted(r.index for r in response.results) == [0, 1, 2]
    await reranker.aclose()
