"""Score cache: a repeated call makes no request; only uncached documents are sent."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from rerank_core import CacheStats, CachingReranker, ConfigurationError, HTTPReranker, MemoryScoreCache, load_reranker
from rerank_core.cache import CachedScore, ScoreCache, SQLiteScoreCache, cache_key
from tests.support.emulator import ProviderEmulator
from tests.support.fixtures import StartEmulator

QUERY = "capital of france"
DOCS = ["berlin is in germany", "paris is the capital of france", "the capital city", "bread and water"]


def config(emu: ProviderEmulator, cache: bool | str = True, **extra: object) -> dict[str, object]:
    return {"provider": "generic", "model": "m", "base_url": emu.base_url, "api_key": "k", "cache": cache, **extra}


def test_second_identical_call_makes_no_request(start_emulator: StartEmulator) -> None:
    emu = start_emulator("generic")
    reranker = load_reranker(config(emu))

    first = reranker.rerank(QUERY, DOCS, top_n=2)
    second = reranker.rerank(QUERY, DOCS, top_n=2)

    assert emu.request_count == 1
    assert (first.cache.hits, first.cache.misses) == (0, 4)  # type: ignore[union-attr]
    assert (second.cache.hits, second.cache.misses) == (4, 0)  # type: ignore[union-attr]
    assert second.results == first.results
    assert second.dropped == first.dropped
    assert (second.provider, second.model, second.score_kind) == (
        "generic",
        "m",
        "unknown",
    )  # generic documents no score range


def test_only_uncached_documents_are_sent(start_emulator: StartEmulator) -> None:
    emu = start_emulator("generic")
    reranker = load_reranker(config(emu))
    reranker.rerank(QUERY, DOCS[:3], top_n=1)
    assert "top_n" not in emu.requests[0].body  # every document is scored, so every one can be cached

    response = reranker.rerank(QUERY, DOCS)
    assert emu.request_count == 2
    assert emu.requests[1].body["documents"] == [DOCS[3]]
    assert (response.cache.hits, response.cache.misses) == (3, 1)  # type: ignore[union-attr]
    assert sorted(r.index for r in response.results) == [0, 1, 2, 3]


def test_the_key_includes_query_and_model(start_emulator: StartEmulator) -> None:
    emu = start_emulator("generic")
    store = MemoryScoreCache()
    base = {"base_url": emu.base_url, "api_key": "k"}
    model_a = CachingReranker(HTTPReranker("generic", model="a", **base), store)  # type: ignore[arg-type]
    model_b = CachingReranker(HTTPReranker("generic", model="b", **base), store)  # type: ignore[arg-type]
    model_a.rerank(QUERY, DOCS)
    model_a.rerank("another query", DOCS)
    model_b.rerank(QUERY, DOCS)
    assert emu.request_count == 3
    assert len(store) == 12
    assert cache_key(model_a.inner.scoring_signature, QUERY, DOCS[0]) != cache_key(
        model_b.inner.scoring_signature, QUERY, DOCS[0]
    )


def test_settings_that_change_scores_never_share_cache_entries(start_emulator: StartEmulator) -> None:
    """Two servers behind one model name, or one model asked differently, must not read each other's scores."""
    first, second = start_emulator("generic"), start_emulator("generic", scorer=lambda query, text: 0.5)
    store = MemoryScoreCache()
    secret = "sk-cache-secret-42"
    on_first = CachingReranker(HTTPReranker("generic", model="m", base_url=first.base_url, api_key=secret), store)
    on_second = CachingReranker(HTTPReranker("generic", model="m", base_url=second.base_url, api_key="k"), store)
    truncating = CachingReranker(
        HTTPReranker("generic", model="m", base_url=first.base_url, api_key="k", options={"truncate": "end"}), store
    )

    scores_first = [r.relevance_score for r in on_first.rerank(QUERY, DOCS).results]
    scores_second = [r.relevance_score for r in on_second.rerank(QUERY, DOCS).results]
    truncating.rerank(QUERY, DOCS)

    assert scores_second == [0.5] * len(DOCS) != scores_first
    assert (first.request_count, second.request_count) == (2, 1)
    assert len({reranker.inner.scoring_signature for reranker in (on_first, on_second, truncating)}) == 3
    assert secret not in on_first.inner.scoring_signature  # the key never goes into cache keys


def test_local_activation_and_length_are_part_of_the_signature(tiny_cross_encoder: str) -> None:
    from rerank_core.local.torch_engine import TorchCrossEncoder

    signatures = {
        TorchCrossEncoder(tiny_cross_encoder).scoring_signature,
        TorchCrossEncoder(tiny_cross_encoder, activation="none").scoring_signature,
        TorchCrossEncoder(tiny_cross_encoder, max_length=64).scoring_signature,
        TorchCrossEncoder(tiny_cross_encoder, quantize="int8").scoring_signature,
    }
    assert len(signatures) == 4


def test_sqlite_cache_persists_across_instances(start_emulator: StartEmulator, tmp_path: Path) -> None:
    emu = start_emulator("generic")
    url = f"sqlite:///{tmp_path / 'scores.db'}"
    first = load_reranker(config(emu, url)).rerank(QUERY, DOCS)

    again = load_reranker(config(emu, url))  # a new process would build exactly this
    second = again.rerank(QUERY, DOCS)

    assert emu.request_count == 1
    assert second.cache is not None
    assert second.cache.hits == len(DOCS)
    assert [(r.index, r.relevance_score) for r in second.results] == [
        (r.index, r.relevance_score) for r in first.results
    ]
    assert second.score_kind == first.score_kind


async def test_async_sqlite_cache(start_emulator: StartEmulator, tmp_path: Path) -> None:
    emu = start_emulator("generic")
    reranker = load_reranker(config(emu, f"sqlite:///{tmp_path / 'async.db'}"))
    first = await reranker.arerank(QUERY, DOCS)
    second = await reranker.arerank(QUERY, DOCS)
    assert emu.request_count == 1
    assert second.results == first.results
    await reranker.aclose()


def test_sqlite_cache_is_thread_safe(start_emulator: StartEmulator, tmp_path: Path) -> None:
    emu = start_emulator("generic")
    reranker = load_reranker(config(emu, f"sqlite:///{tmp_path / 'threads.db'}"))
    queries = [f"query {i % 4} capital" for i in range(16)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(lambda q: reranker.rerank(q, DOCS), queries))
    assert all(len(r.results) == len(DOCS) for r in responses)
    assert [r.results for r in responses[:4]] == [r.results for r in responses[4:8]]
    sent = emu.request_count
    assert reranker.rerank("query 0 capital", DOCS).cache == CacheStats(hits=len(DOCS), misses=0)
    assert emu.request_count == sent


def test_logit_scores_are_cached_raw_and_normalized_on_the_way_out(start_emulator: StartEmulator) -> None:
    emu = start_emulator("nvidia")
    reranker = load_reranker(
        {
            "provider": "nvidia",
            "model": "nv",
            "base_url": emu.base_url,
            "api_key": "k",
            "cache": True,
            "normalize": "sigmoid",
        }
    )
    first = reranker.rerank(QUERY, DOCS)
    second = reranker.rerank(QUERY, DOCS)
    assert emu.request_count == 1
    assert second.score_kind == first.score_kind == "probability"
    assert second.results == first.results


class DictStore:
    """A third-party store: anything with get_many / set_many plugs in."""

    def __init__(self) -> None:
        self.data: dict[str, CachedScore] = {}
        self.lock = threading.Lock()

    def get_many(self, keys: list[str]) -> dict[str, CachedScore]:
        return {key: self.data[key] for key in keys if key in self.data}

    def set_many(self, entries: dict[str, CachedScore]) -> None:
        self.data.update(entries)


def test_custom_store_plugs_in(start_emulator: StartEmulator) -> None:
    emu = start_emulator("generic")
    store = DictStore()
    assert isinstance(store, ScoreCache)
    reranker = CachingReranker(HTTPReranker("generic", model="m", base_url=emu.base_url, api_key="k"), store)
    reranker.rerank(QUERY, DOCS)
    reranker.rerank(QUERY, DOCS)
    assert emu.request_count == 1
    assert len(store.data) == len(DOCS)


def test_memory_cache_evicts_least_recently_used() -> None:
    store = MemoryScoreCache(max_entries=2)
    store.set_many({"a": CachedScore(1.0, "probability"), "b": CachedScore(2.0, "probability")})
    store.get_many(["a"])
    store.set_many({"c": CachedScore(3.0, "probability")})
    assert set(store.get_many(["a", "b", "c"])) == {"a", "c"}


def test_bad_cache_setting_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="cache"):
        load_reranker({"provider": "local", "cache": "redis://localhost"})


def test_sqlite_store_round_trip(tmp_path: Path) -> None:
    store = SQLiteScoreCache(tmp_path / "nested" / "s.db")
    store.set_many({"k": CachedScore(0.25, "logit")})
    assert store.get_many(["k", "missing"]) == {"k": CachedScore(0.25, "logit")}
    store.close()
