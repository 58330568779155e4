"""Retries over real HTTP: which statuses, how many attempts, and how long the client waits in between."""

from __future__ import annotations

import logging
import math
import time
from email.utils import formatdate

import pytest
from tests.support.emulator import Fault, ProviderEmulator
from tests.support.fixtures import StartEmulator
from tests.support.transport import API_KEY, MODES, Mode, RecordedWaits, call, make_reranker

from rerank_core import (
    AuthenticationError,
    ConfigurationError,
    InvalidRequestError,
    ProviderError,
    RateLimitError,
    RerankError,
    RerankTimeoutError,
)
from rerank_core.http.retry import RetryPolicy, is_retryable, requested_wait

QUERY = "apple pie"
DOCS = ["apple pie", "car", "pie"]
ONE = ["apple pie"]


@pytest.mark.parametrize("mode", MODES)
async def test_429_with_retry_after_then_success(emu: ProviderEmulator, waits: RecordedWaits, mode: Mode) -> None:
    emu.fail_next(Fault(status=429, headers={"retry-after": "2"}))
    with make_reranker(emu, waits=waits) as reranker:
        response = await call(reranker, mode, QUERY, DOCS)
    assert emu.request_count == 2
    assert waits.waits == [2.0]
    assert [r.index for r in response.results] == [0, 2, 1]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after-ms": "150"}, 0.15),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),  # the precise header wins
        ({"retry-after": "0"}, 0.0),
        ({"retry-after": "1.5"}, 1.5),
    ],
)
async def test_retry_wait_headers_are_honoured(
    emu: ProviderEmulator, waits: RecordedWaits, headers: dict[str, str], expected: float
) -> None:
    emu.fail_next(Fault(status=503, headers=headers))
    with make_reranker(emu, waits=waits) as reranker:
        reranker.rerank(QUERY, ONE)  # one document: a 5xx on more would be retried as two halves
    assert emu.request_count == 2
    assert waits.waits == [pytest.approx(expected)]


async def test_retry_after_as_http_date(emu: ProviderEmulator, waits: RecordedWaits) -> None:
    emu.fail_next(Fault(status=429, headers={"retry-after": formatdate(time.time() + 30, usegmt=True)}))
    with make_reranker(emu, waits=waits) as reranker:
        reranker.rerank(QUERY, DOCS)
    assert emu.request_count == 2
    assert waits.waits[0] == pytest.approx(30, abs=2)


@pytest.mark.parametrize("mode", MODES)
async def test_retry_after_past_the_cap_gives_up_saying_when(
    emu: ProviderEmulator, waits: RecordedWaits, mode: Mode
) -> None:
    emu.fail_next(Fault(status=429, headers={"retry-after": "86400"}))
    with make_reranker(emu, waits=waits) as reranker, pytest.raises(RateLimitError) as caught:
        await call(reranker, mode, QUERY, DOCS)
    assert emu.request_count == 1
    assert waits.waits == []  # not slept on
    assert "wait 86400 s" in str(caught.value)
    assert "max_retry_after=60 s" in str(caught.value)
    assert "retry after 20" in str(caught.value)  # a date: when to come back


async def test_max_retry_after_is_configurable(emu: ProviderEmulator, waits: RecordedWaits) -> None:
    emu.fail_next(Fault(status=429, headers={"retry-after": "90"}))
    with make_reranker(emu, waits=waits, max_retry_after=120) as reranker:
        reranker.rerank(QUERY, DOCS)
    assert waits.waits == [90]


@pytest.mark.parametrize("value", [-1, math.inf, math.nan, "60", True])
def test_max_retry_after_is_validated(value: object) -> None:
    with pytest.raises(ConfigurationError, match="max_retry_after"):
        make_reranker("http://127.0.0.1:9", max_retry_after=value)


@pytest.mark.parametrize("mode", MODES)
async def test_5xx_burst_is_ridden_out(emu: ProviderEmulator, waits: RecordedWaits, mode: Mode) -> None:
    emu.fail_next(Fault(status=503), Fault(status=502), Fault(status=500))
    with make_reranker(emu, waits=waits, max_retries=3) as reranker:
        response = await call(reranker, mode, QUERY, ONE)
    assert emu.request_count == 4
    assert len(waits.waits) == 3
    assert len(response.results) == 1


@pytest.mark.parametrize("mode", MODES)
async def test_gives_up_after_max_retries(emu: ProviderEmulator, waits: RecordedWaits, mode: Mode) -> None:
    emu.fail_always(Fault(status=503, body={"error": {"message": "model overloaded"}}))
    with make_reranker(emu, waits=waits, max_retries=2) as reranker, pytest.raises(ProviderError) as caught:
        await call(reranker, mode, QUERY, ONE)
    assert emu.request_count == 3  # the first attempt + max_retries
    assert caught.value.status_code == 503
    assert "model overloaded" in str(caught.value)
    assert "3 attempts" in str(caught.value)


async def test_max_retries_zero_means_one_attempt(emu: ProviderEmulator, waits: RecordedWaits) -> None:
    emu.fail_always(Fault(status=429))
    with make_reranker(emu, waits=waits, max_retries=0) as reranker, pytest.raises(RateLimitError):
        reranker.rerank(QUERY, DOCS)
    assert emu.request_count == 1
    assert waits.waits == []


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, InvalidRequestError),
        (401, AuthenticationError),
        (403, AuthenticationError),
        (404, InvalidRequestError),
        (422, InvalidRequestError),
    ],
)
@pytest.mark.parametrize("mode", MODES)
async def test_never_retried_statuses(
    emu: ProviderEmulator, waits: RecordedWaits, mode: Mode, status: int, error: type[RerankError]
) -> None:
    # Even a provider header asking for a retry cannot make a malformed request succeed.
    emu.fail_always(Fault(status=status, headers={"x-should-retry": "true"}))
    with make_reranker(emu, waits=waits, max_retries=3) as reranker, pytest.raises(error) as caught:
        await call(reranker, mode, QUERY, DOCS)
    assert emu.request_count == 1
    assert caught.value.status_code == status


@pytest.mark.parametrize("status", [408, 409, 425, 429, 499, 500, 502, 503, 504, 529])
async def test_retried_statuses(emu: ProviderEmulator, waits: RecordedWaits, status: int) -> None:
    emu.fail_next(Fault(status=status))
    with make_reranker(emu, waits=waits) as reranker:
        assert len(reranker.rerank(QUERY, DOCS).results) == 3
    # a 5xx is retried as two halves (1 + 2 documents); the others re-send the batch
    assert emu.request_count == (3 if status >= 500 else 2)


@pytest.mark.parametrize("mode", MODES)
async def test_x_should_retry_false_stops_a_503(emu: ProviderEmulator, waits: RecordedWaits, mode: Mode) -> None:
    emu.fail_always(Fault(status=503, headers={"x-should-retry": "false"}))
    with make_reranker(emu, waits=waits, max_retries=3) as reranker, pytest.raises(ProviderError):
        await call(reranker, mode, QUERY, DOCS)
    assert emu.request_count == 1


async def test_x_should_retry_true_retries_an_otherwise_final_status(
    emu: ProviderEmulator, waits: RecordedWaits
) -> None:
    emu.fail_next(Fault(status=424, headers={"x-should-retry": "true"}))
    with make_reranker(emu, waits=waits) as reranker:
        reranker.rerank(QUERY, DOCS)
    assert emu.request_count == 2


async def test_timeouts_are_retried_then_raised(start_emulator: StartEmulator, waits: RecordedWaits) -> None:
    emu = start_emulator("generic")
    emu.fail_always(Fault(delay=0.5))
    reranker = make_reranker(emu, waits=waits, timeout=0.2, max_retries=1)
    with reranker, pytest.raises(RerankTimeoutError, match=r"timeout=0\.2 s") as caught:
        await reranker.arerank(QUERY, ONE)
    assert emu.request_count == 2
    assert len(waits.waits) == 1
    assert isinstance(caught.value, TimeoutError)


async def test_real_backoff_waits_without_a_recorder(emu: ProviderEmulator) -> None:
    emu.fail_next(Fault(status=500), Fault(status=500))
    with make_reranker(emu) as reranker:
        reranker.retry_policy = RetryPolicy(max_retries=2, backoff_base=0.01)
        assert len(reranker.rerank(QUERY, ONE).results) == 1
        assert len((await reranker.arerank(QUERY, ONE)).results) == 1
    assert emu.request_count == 4


async def test_retries_are_logged_without_the_api_key(
    emu: ProviderEmulator, waits: RecordedWaits, caplog: pytest.LogCaptureFixture
) -> None:
    emu.fail_next(Fault(status=429, body={"error": {"message": f"slow down, {API_KEY}"}}, headers={"retry-after": "1"}))
    with caplog.at_level(logging.DEBUG, logger="rerank_core"), make_reranker(emu, waits=waits) as reranker:
        reranker.rerank(QUERY, DOCS)
    retry_logs = [r for r in caplog.records if "retry 1 of 2" in r.getMessage()]
    assert len(retry_logs) == 1
    assert retry_logs[0].levelno == logging.INFO
    assert "HTTP 429" in retry_logs[0].getMessage()
    assert "slow down" in retry_logs[0].getMessage()
    assert all(API_KEY not in record.getMessage() for record in caplog.records)


# -- the policy itself ------------------------------------------------------------------------------------------


def test_backoff_is_full_jitter_under_a_doubling_cap() -> None:
    policy = RetryPolicy(max_retries=10, backoff_base=0.5, backoff_cap=3.0)
    for retries_done, ceiling in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 3.0), (6, 3.0)]:
        delays = [policy.delay(retries_done, 503, {}) for _ in range(200)]
        assert all(d is not None and 0 <= d <= ceiling for d in delays)
        assert max(d for d in delays if d is not None) > ceiling / 2  # jitter spans the range, not a constant
    assert policy.delay(10, 503, {}) is None


def test_network_errors_are_retryable() -> None:
    assert RetryPolicy(max_retries=1).delay(0, None, None) is not None
    assert RetryPolicy(max_retries=1).delay(1, None, None) is None


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (503, {}, True),
        (503, {"x-should-retry": "False"}, False),
        (418, {}, False),
        (418, {"x-should-retry": "true"}, True),
        (413, {"x-should-retry": "true"}, False),
        (429, {"x-should-retry": "maybe"}, True),
    ],
)
def test_is_retryable(status: int, headers: dict[str, str], expected: bool) -> None:
    assert is_retryable(status, headers) is expected


def test_requested_wait_reads_reset_timestamps_and_ignores_garbage() -> None:
    assert requested_wait({"x-ratelimit-reset": str(time.time() + 10)}) == pytest.approx(10, abs=1)
    assert requested_wait({"retry-after": "soon"}) is None
    assert requested_wait({"retry-after-ms": "nan"}) is None
    assert requested_wait({}) is None
