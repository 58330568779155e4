"""Secrets on every path out of the library: keys echoed in response headers (request ids, `Location`), in error
bodies near the cut, in escaped or encoded forms, Basic credentials from a `base_url`, caller headers named like
credentials; httpx's and httpcore's DEBUG logs; Haystack serialization; pickles. Sync and async."""

from __future__ import annotations

import base64
import html
import json
import logging
import pickle
import traceback
import urllib.parse

import pytest

from rerank_core import ConfigurationError, HTTPReranker, RerankError
from tests.support.emulator import Fault, ProviderEmulator
from tests.support.fixtures import StartEmulator
from tests.support.transport import MODES, Mode, RecordedWaits, call, make_reranker

KEY = "sk-paths-0a1b2c3d4e5f-TOPSECRET/+&="
SIGNATURE = "sig-9f8e7d6c5b4a3210"
DOCS = ["Paris is in France.", "Berlin is in Germany."]


def fragments(secret: str) -> list[str]:
    """The secret and every 8-character piece of it: a cut must not leave its start (or any part) behind."""
    return [secret] + [secret[i : i + 8] for i in range(len(secret) - 7)]


def assert_clean(text: str, *secrets: str) -> None:
    for secret in secrets:
        for piece in fragments(secret):
            assert piece not in text, f"{piece!r} leaked in {text[:400]!r}"


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    for name in ("httpx", "httpcore", "rerank_core"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def everything(logs: pytest.LogCaptureFixture, *objects: object) -> str:
    texts = [logs.text] + [record.getMessage() for record in logs.records]
    for item in objects:
        texts.append(repr(item))
        if isinstance(item, BaseException):
            texts.append("".join(traceback.format_exception(item)))
    return "\n".join(texts)


def reranker_for(emu: ProviderEmulator) -> HTTPReranker:
    return make_reranker(emu, waits=RecordedWaits(), api_key=KEY, headers={"X-Signature": SIGNATURE}, max_retries=1)


@pytest.mark.parametrize("mode", MODES)
async def test_a_key_echoed_in_response_headers_stays_out_of_ids_reprs_and_logs(
    start_emulator: StartEmulator, logs: pytest.LogCaptureFixture, mode: Mode
) -> None:
    emu = start_emulator("generic", api_key=KEY)
    echo = {"x-request-id": f"req-{KEY}", "location": f"https://x.example/?key={KEY}&sig={SIGNATURE}"}
    emu.fail_next(Fault(headers=echo))
    with reranker_for(emu) as reranker:
        response = await call(reranker, mode, "q", DOCS)
    assert response.request_ids, "the request id is still reported, scrubbed"
    assert_clean(everything(logs, response, response.request_ids), KEY, SIGNATURE)
    assert any("httpcore" in record.name for record in logs.records), "httpcore's DEBUG log was captured"


@pytest.mark.parametrize("mode", MODES)
async def test_echoed_headers_and_bodies_stay_out_of_errors(
    start_emulator: StartEmulator, logs: pytest.LogCaptureFixture, mode: Mode
) -> None:
    emu = start_emulator("generic", api_key=KEY)
    body = {"error": {"message": "x" * 290 + f" bad key {KEY} and {SIGNATURE}"}}  # the key straddles the cut
    emu.fail_always(Fault(status=503, headers={"x-request-id": KEY, "location": KEY}, body=body))
    with reranker_for(emu) as reranker, pytest.raises(RerankError) as caught:
        await call(reranker, mode, "q", DOCS)
    assert caught.value.status_code == 503
    assert_clean(everything(logs, caught.value, caught.value.request_id), KEY, SIGNATURE)


ENCODED = {
    "html": html.escape(KEY),
    "json-unicode": "".join(f"\\u{ord(c):04x}" for c in KEY),
    "json-slash": KEY.replace("/", "\\/"),
    "url": urllib.parse.quote(KEY, safe=""),
    "url-plus": urllib.parse.quote_plus(KEY),
    "base64": base64.b64encode(KEY.encode()).decode(),
    "mixed-entities": KEY[:5] + "&#x" + f"{ord(KEY[5]):x};" + KEY[6:],
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("form", list(ENCODED))
async def test_encoded_forms_of_the_key_are_scrubbed(
    start_emulator: StartEmulator, logs: pytest.LogCaptureFixture, form: str, mode: Mode
) -> None:
    emu = start_emulator("generic", api_key=KEY)
    # Raw bytes, so the encoded form reaches the client exactly as written.
    raw = b'{"error": {"message": "invalid credentials: ' + ENCODED[form].encode() + b'"}}'
    emu.fail_always(Fault(status=401, raw=raw))
    with reranker_for(emu) as reranker, pytest.raises(RerankError) as caught:
        await call(reranker, mode, "q", DOCS)
    text = everything(logs, caught.value)
    assert_clean(text, KEY, ENCODED[form])


@pytest.mark.parametrize("mode", MODES)
async def test_basic_credentials_from_the_base_url_are_secrets(
    start_emulator: StartEmulator, logs: pytest.LogCaptureFixture, mode: Mode
) -> None:
    emu = start_emulator("infinity")  # a server that needs no key: the URL's credentials are the only secret
    password = "hunter2-very-secret"
    pair = base64.b64encode(f"admin:{password}".encode()).decode()
    raw = json.dumps({"error": {"message": f"rejected Authorization: Basic {pair} (admin:{password})"}}).encode()
    emu.fail_always(Fault(status=403, raw=raw))
    url = emu.base_url.replace("http://", f"http://admin:{password}@")
    reranker = HTTPReranker("infinity", model="m", base_url=url, max_retries=0)
    with reranker, pytest.raises(RerankError) as caught:
        await call(reranker, mode, "q", DOCS)
    assert_clean(everything(logs, caught.value, reranker), password, pair)


def test_haystack_refuses_secrets_in_model_kwargs(start_emulator: StartEmulator) -> None:
    from haystack_integrations.components.rankers.rerank import RerankRanker

    emu = start_emulator("generic")
    spec = {"provider": "generic", "model": "m", "base_url": emu.base_url}
    for model_kwargs in ({"api_key": KEY}, {"headers": {"X-Client-Credential": KEY}}):
        with pytest.raises(ConfigurationError, match="plaintext secret") as caught:
            RerankRanker(reranker=spec, model_kwargs=model_kwargs)
        assert_clean(str(caught.value), KEY)
    harmless = RerankRanker(reranker=spec, model_kwargs={"headers": {"X-Tenant": "blue"}})
    assert "blue" in json.dumps(harmless.to_dict())


def test_a_live_reranker_refuses_pickling_without_quoting_its_key(start_emulator: StartEmulator) -> None:
    emu = start_emulator("generic", api_key=KEY)
    with reranker_for(emu) as reranker, pytest.raises(TypeError, match="cannot be pickled") as caught:
        pickle.dumps(reranker)
    assert_clean(str(caught.value), KEY)
