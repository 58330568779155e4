"""Replicas of one deployment behind one reranker: `base_url=[...]`, each request to the least busy healthy one.

Three loopback emulators stand in for three replicas of a self-hosted server. Each test counts what every
replica received, so a balancing rule that sends everything to one server fails here.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from tests.cli.helpers import run
from tests.support.emulator import Fault, ProviderEmulator
from tests.support.fixtures import StartEmulator
from tests.support.transport import API_KEY, MODES, Mode, RecordedWaits, call, make_reranker, texts

from rerank_core import ConfigurationError, RerankerConfig, load_reranker
from rerank_core.http import replicas as replicas_module
from rerank_core.http.replicas import FAILURES_TO_OPEN, Replica, Replicas

DOCS = ["apple pie", "car repair", "pie crust"]


def three(start_emulator: StartEmulator, **kwargs: Any) -> list[ProviderEmulator]:
    return [start_emulator("generic", **kwargs) for _ in range(3)]


def counts(emulators: list[ProviderEmulator]) -> list[int]:
    return [emu.request_count for emu in emulators]


@pytest.mark.parametrize("mode", MODES)
async def test_one_call_after_another_spreads_evenly(
    start_emulator: StartEmulator, mode: Mode, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Equal servers: on a busy machine one slow loopback answer would otherwise mark a replica as slower.
    monkeypatch.setattr(replicas_module, "LATENCY_MEMORY", 0.0)
    emus = three(start_emulator)
    with make_reranker([emu.base_url for emu in emus]) as reranker:
        for _ in range(30):
            response = await call(reranker, mode, "apple", DOCS)
            assert response.results[0].document.text == "apple pie"
    assert sum(counts(emus)) == 30
    assert min(counts(emus)) >= 5, counts(emus)  # equal servers take turns: no keep-alive connection pins one


@pytest.mark.parametrize("mode", MODES)
async def test_the_batches_of_one_call_go_to_every_replica(start_emulator: StartEmulator, mode: Mode) -> None:
    emus = three(start_emulator, latency=0.05)  # long enough for batches to overlap
    with make_reranker(
        [emu.base_url for emu in emus],
        max_documents_per_request=2,
        max_concurrency=6,
    ) as reranker:
        response = await call(reranker, mode, "alpha beta", texts(12))
    assert len(response.results) == 12
    assert all(count >= 1 for count in counts(emus)), counts(emus)
    assert sum(counts(emus)) == 6


def test_a_retry_goes_to_another_replica(start_emulator: StartEmulator) -> None:
    emus = three(start_emulator)
    with make_reranker([emu.base_url for emu in emus], waits=RecordedWaits(), max_retries=3) as reranker:
        for emu in emus:
            emu.fail_next(Fault(status=503))  # every replica fails its first request
        response = reranker.rerank("apple", ["apple pie"])  # one document: a 5xx cannot split it
    assert response.results[0].document.text == "apple pie"
    assert sorted(counts(emus)) == [1, 1, 2]  # the first three attempts went to three different replicas


@pytest.mark.parametrize("mode", MODES)
async def test_a_replica_going_down_under_load_loses_no_call(start_emulator: StartEmulator, mode: Mode) -> None:
    emus = three(start_emulator)
    waits = RecordedWaits()
    with make_reranker([emu.base_url for emu in emus], waits=waits, max_retries=2) as reranker:
        first = [await call(reranker, mode, "apple", DOCS) for _ in range(6)]
        emus[1].fail_always(Fault(drop_connection=True))  # connections it already holds die too
        emus[1].stop()
        later = await _concurrently(reranker, mode, 24)
    assert all(r.results[0].document.text == "apple pie" for r in first + later)
    assert emus[0].request_count + emus[2].request_count >= 24


async def _concurrently(reranker: Any, mode: Mode, n: int) -> list[Any]:
    if mode == "async":
        return list(await asyncio.gather(*(reranker.arerank("apple", DOCS) for _ in range(n))))
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda _: reranker.rerank("apple", DOCS), range(n)))


async def test_a_much_slower_replica_gets_a_small_share(start_emulator: StartEmulator) -> None:
    fast = [start_emulator("generic", latency=0.01) for _ in range(2)]
    slow = start_emulator("generic", latency=0.25)
    with make_reranker([*(emu.base_url for emu in fast), slow.base_url]) as reranker:
        for _ in range(6):  # one call after another: each replica answers, so each has a latency figure
            reranker.rerank("apple", DOCS)
        assert slow.request_count == 2  # once it is known to be slow, one call at a time never needs it
        results = await _concurrently(reranker, "async", 60)
    assert len(results) == 60
    assert slow.request_count - 2 <= 9, (counts(fast), slow.request_count)  # at most 15 %, not a third
    assert min(counts(fast)) >= 2 + 20


def test_a_replica_that_comes_back_is_used_again(
    start_emulator: StartEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(replicas_module, "FIRST_COOLDOWN", 0.0)  # probe at once instead of after a second
    # Latency out of the picture: on a busy machine loopback timings alone would move requests between replicas,
    # and this test is about health.
    monkeypatch.setattr(replicas_module, "LATENCY_MEMORY", 0.0)
    emus = three(start_emulator)
    with make_reranker([emu.base_url for emu in emus], waits=RecordedWaits()) as reranker:
        emus[0].fail_always(Fault(status=503))
        for _ in range(12):
            reranker.rerank("apple", DOCS)
        failed_while_down = emus[0].request_count
        emus[0].fail_always(None)
        for _ in range(12):
            reranker.rerank("apple", DOCS)
    assert failed_while_down >= FAILURES_TO_OPEN
    assert emus[0].request_count - failed_while_down >= 3  # back in turn with the others


def test_only_one_request_probes_a_recovering_replica() -> None:
    a, b = Replica(httpx.URL("http://a"), "http://a"), Replica(httpx.URL("http://b"), "http://b")
    replicas = Replicas([a, b])
    for _ in range(FAILURES_TO_OPEN):
        with replicas.use(avoid={b}) as picked:
            assert picked is a
            replicas.report(a, False, 0.01)
    with replicas.use() as picked:
        assert picked is b  # a is open: its cooldown has not passed
        replicas.report(b, True, 0.01)
    a.open_until = 0.0  # the cooldown is over
    with replicas.use(avoid={b}) as probe:
        assert probe is a
        assert a.probing
        with replicas.use() as meanwhile, replicas.use() as also:
            assert (meanwhile, also) == (b, b)  # nobody else goes to a while the probe is out
        replicas.report(a, True, 0.01)
    assert not a.probing
    assert a.failures == 0
    with replicas.use(avoid={b}) as picked:
        assert picked is a  # closed again: usable like any other


def test_a_failed_probe_reopens_the_circuit_for_longer() -> None:
    a, b = Replica(httpx.URL("http://a"), "http://a"), Replica(httpx.URL("http://b"), "http://b")
    replicas = Replicas([a, b])
    for _ in range(FAILURES_TO_OPEN):
        replicas.report(a, False, 0.01)
    first_cooldown = a.cooldown
    a.open_until = 0.0
    with replicas.use(avoid={b}) as probe:
        replicas.report(probe, False, 0.01)
    assert a.cooldown == 2 * first_cooldown
    with replicas.use() as picked:
        assert picked is b


def test_when_every_replica_is_down_the_call_still_tries_one() -> None:
    a, b = Replica(httpx.URL("http://a"), "http://a"), Replica(httpx.URL("http://b"), "http://b")
    replicas = Replicas([a, b])
    for replica in (a, b):
        for _ in range(FAILURES_TO_OPEN):
            replicas.report(replica, False, 0.01)
    b.open_until = a.open_until - 1  # b's cooldown ends first
    with replicas.use() as picked:
        assert picked is b


def test_the_connection_limit_stays_reranker_wide(start_emulator: StartEmulator) -> None:
    emus = three(start_emulator, latency=0.05)
    together = SharedInFlight()
    for emu in emus:
        emu._counting_in_flight = together.counting  # type: ignore[method-assign]
    with (
        make_reranker([emu.base_url for emu in emus], max_connections=2) as reranker,
        ThreadPoolExecutor(max_workers=6) as pool,
    ):
        list(pool.map(lambda _: reranker.rerank("apple", DOCS), range(12)))
    assert together.peak == 2  # reached, never passed: three servers do not make three limits
    assert sum(counts(emus)) == 12


class SharedInFlight:
    """Requests being served by any of several emulators at the same moment."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = 0
        self.peak = 0

    @contextmanager
    def counting(self) -> Iterator[None]:
        with self._lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        try:
            yield
        finally:
            with self._lock:
                self.now -= 1


def test_replicas_come_from_config_files_env_and_specs(start_emulator: StartEmulator) -> None:
    emus = three(start_emulator)
    urls = [emu.base_url for emu in emus]
    config = RerankerConfig.from_env({"RERANK_PROVIDER": "generic:test-model", "RERANK_BASE_URL": ",".join(urls)})
    assert config.base_url == urls
    with load_reranker(config, api_key=API_KEY) as reranker:
        for _ in range(6):
            reranker.rerank("apple", DOCS)
    assert all(count == 2 for count in counts(emus)), counts(emus)
    dumped = RerankerConfig.from_mapping({"provider": "generic", "base_url": urls}).model_dump()
    assert dumped["base_url"] == urls


def test_repr_and_cache_identity_name_every_replica_without_secrets(start_emulator: StartEmulator) -> None:
    emus = three(start_emulator)
    urls = [emu.base_url.replace("http://", "http://user:pa55word@") for emu in emus]
    with make_reranker(urls) as one, make_reranker(list(reversed(urls))) as other:
        assert one.rerank("apple", DOCS).results[0].document.text == "apple pie"
        shown = repr(one)
        assert all(emu.base_url.split("//")[1] in shown for emu in emus)
        assert "pa55word" not in shown
        assert API_KEY not in shown
        assert one.scoring_signature == other.scoring_signature  # the same deployment, listed in another order


@pytest.mark.parametrize(
    ("base_url", "message"),
    [
        ([], "non-empty list"),
        (["http://a:1", "http://a:1"], "twice"),
        (["http://a:1", 7], "URL string"),
        (["http://a:1", "ftp://b"], "absolute http"),
    ],
)
def test_a_bad_replica_list_is_a_configuration_error(base_url: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        make_reranker(base_url)


def test_the_cli_takes_replicas_in_base_url(start_emulator: StartEmulator, tmp_path: Path) -> None:
    emus = three(start_emulator)
    queries = tmp_path / "queries.jsonl"
    queries.write_text("".join(json.dumps({"query": "apple", "documents": DOCS}) + "\n" for _ in range(6)))
    done = run(
        "--queries", str(queries), "--provider", "generic:test-model",
        "--base-url", ",".join(emu.base_url for emu in emus), "--concurrency", "1", RERANK_API_KEY=API_KEY,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert counts(emus) == [2, 2, 2]


@pytest.mark.parametrize("mode", MODES)
async def test_the_wrappers_take_replicas_in_their_config(start_emulator: StartEmulator, mode: Mode) -> None:
    from langchain_core.documents import Document as LangChainDocument

    from rerank_langchain import RerankCompressor

    emus = three(start_emulator)
    config = {"provider": "generic:test-model", "base_url": [emu.base_url for emu in emus]}
    docs = [LangChainDocument(page_content=text) for text in DOCS]
    with RerankCompressor(reranker=config, api_key=SecretStr(API_KEY), top_n=1) as compressor:
        for _ in range(6):
            if mode == "sync":
                kept = compressor.compress_documents(docs, "apple")
            else:
                kept = await compressor.acompress_documents(docs, "apple")
            assert [doc.page_content for doc in kept] == ["apple pie"]
    assert counts(emus) == [2, 2, 2]
