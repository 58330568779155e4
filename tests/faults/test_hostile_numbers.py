"""Hostile numbers and shapes: absurd wait headers, odd error bodies and impossible ports stay typed errors, sync
and async, and never stop a fallback chain or defeat fail-open."""

from __future__ import annotations

from typing import Any

import pytest

from rerank_core import ConfigurationError, HTTPReranker, RerankError, load_reranker
from tests.support.emulator import Fault
from tests.support.fixtures import StartEmulator
from tests.support.transport import API_KEY, MODES, Mode, RecordedWaits, call, make_reranker

QUERY = "capital of france"
DOCS = ["Paris is in France.", "Berlin is in Germany."]

WAIT_HEADERS = [
    {"retry-after": "1e17"},
    {"retry-after": "1e308"},
    {"retry-after": "-1e17"},
    {"retry-after": "Fri, 31 Dec 9999 23:59:59 GMT"},
    {"retry-after": "Mon, 01 Jan 0001 00:00:00 GMT"},
    {"retry-after-ms": "1e22"},
    {"retry-after-ms": "-5"},
    {"x-ratelimit-reset": "1e30"},
    {"retry-after": "nan", "x-ratelimit-reset": "inf"},
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("headers", WAIT_HEADERS, ids=lambda h: "-".join(f"{k}={v}" for k, v in h.items()))
async def test_absurd_wait_headers_are_typed_errors_or_bounded_waits(
    start_emulator: StartEmulator, headers: dict[str, str], mode: Mode
) -> None:
    emu = start_emulator("generic", api_key=API_KEY)
    emu.fail_always(Fault(status=429, headers=headers, body={"error": {"message": "slow down"}}))
    waits = RecordedWaits()
    with make_reranker(emu, waits=waits, max_retries=2) as reranker, pytest.raises(RerankError) as caught:
        await call(reranker, mode, QUERY, DOCS)
    assert caught.value.provider == "generic"
    assert caught.value.status_code == 429
    assert caught.value.hint
    assert all(0 <= wait <= reranker.retry_policy.max_retry_after for wait in waits.waits), waits.waits


@pytest.mark.parametrize("mode", MODES)
async def test_an_absurd_wait_does_not_stop_the_chain_or_fail_open(start_emulator: StartEmulator, mode: Mode) -> None:
    down, up = start_emulator("generic", api_key="k"), start_emulator("cohere", api_key="k")
    down.fail_always(Fault(status=429, headers={"retry-after": "1e17", "x-ratelimit-reset": "1e30"}))
    member: dict[str, Any] = {"provider": "generic", "model": "m", "base_url": down.base_url, "api_key": "k"}
    chain = {**member, "fallback": [{"provider": "cohere", "model": "c", "base_url": up.base_url, "api_key": "k"}]}
    with load_reranker(chain) as reranker:
        assert len((await call(reranker, mode, QUERY, DOCS)).results) == 2
    with load_reranker({**member, "on_failure": "passthrough"}) as alone:
        response = await call(alone, mode, QUERY, DOCS)
    assert response.passthrough
    assert [r.index for r in response.results] == [0, 1]


INFINITY_BODIES: dict[str, Any] = {
    "loc-is-a-number": {"detail": [{"type": "too_long", "loc": 5, "msg": "m"}]},
    "loc-is-a-string": {"detail": [{"type": "too_long", "loc": "documents", "msg": "m"}]},
    "detail-is-a-number": {"detail": 7},
    "detail-items-are-lists": {"detail": [[1, 2], None, "x"]},
    "deeply-nested": ('{"detail": [' * 5000 + '"too_long"' + "]}" * 5000).encode(),
    "huge-number": b'{"detail": [{"type": "too_long", "loc": [' + b"9" * 50_000 + b"]}]}",
    "msg-is-huge": {"detail": [{"type": "value_error", "loc": ["body"], "msg": "x" * 1_000_000}]},
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", list(INFINITY_BODIES))
async def test_odd_infinity_422_bodies_are_typed_errors(start_emulator: StartEmulator, name: str, mode: Mode) -> None:
    emu = start_emulator("infinity")
    body = INFINITY_BODIES[name]
    emu.fail_always(Fault(status=422, raw=body) if isinstance(body, bytes) else Fault(status=422, body=body))
    reranker = HTTPReranker("infinity", model="m", base_url=emu.base_url, max_retries=0)
    with reranker, pytest.raises(RerankError) as caught:
        await call(reranker, mode, QUERY, DOCS)
    assert caught.value.provider == "infinity"
    assert caught.value.status_code == 422
    assert len(str(caught.value)) < 2_000


@pytest.mark.parametrize(
    "base_url",
    [
        "http://127.0.0.1:99999",
        "http://127.0.0.1:65536/v1",
        "http://127.0.0.1:0",
        "http://127.0.0.1:-1",
        "http://user:hunter2-secret@127.0.0.1:70000",
    ],
)
def test_impossible_ports_are_refused_when_the_reranker_is_built(base_url: str) -> None:
    with pytest.raises(ConfigurationError, match="port") as caught:
        load_reranker({"provider": "generic", "model": "m", "base_url": base_url, "api_key": "k"})
    assert caught.value.provider == "generic"
    assert "hunter2" not in str(caught.value)
    assert "65535" in str(caught.value)
