"""Score cache: never pay twice for the same (provider, model, query, document) pair.

`CachingReranker` wraps any reranker, looks every document up first and sends only the misses. Stores follow the
small `ScoreCache` protocol; two ship here: an in-memory LRU and a sqlite file (standard library, thread-safe).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple, Protocol, cast, runtime_checkable

from rerank_core.base import Reranker, Scores
from rerank_core.errors import ConfigurationError
from rerank_core.models import CacheStats, Document, ScoreKind

logger = logging.getLogger("rerank_core")


class CachedScore(NamedTuple):
    score: float
    """The raw score, before any `normalize`."""
    score_kind: ScoreKind


@runtime_checkable
class ScoreCache(Protocol):
    """What a store needs to offer. Keys are hex digests (see `cache_key`)."""

    def get_many(self, keys: Sequence[str]) -> dict[str, CachedScore]: ...

    def set_many(self, entries: Mapping[str, CachedScore]) -> None: ...


def cache_key(signature: str, query: str, text: str) -> str:
    """`signature` is the reranker's `scoring_signature`: provider, model and whatever else shapes its scores."""
    document_hash = hashlib.sha256(text.encode()).hexdigest()
    parts = "\x00".join((signature, query, document_hash))
    return hashlib.sha256(parts.encode()).hexdigest()


class MemoryScoreCache:
    """A thread-safe LRU in memory, holding at most `max_entries` scores."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[str, CachedScore] = OrderedDict()
        self._lock = threading.Lock()

    def get_many(self, keys: Sequence[str]) -> dict[str, CachedScore]:
        found = {}
        with self._lock:
            for key in keys:
                if key in self._entries:
                    self._entries.move_to_end(key)
                    found[key] = self._entries[key]
        return found

    def set_many(self, entries: Mapping[str, CachedScore]) -> None:
        with self._lock:
            for key, value in entries.items():
                self._entries[key] = value
                self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


class SQLiteScoreCache:
    """Scores in a sqlite file that survives restarts and is shared by every reranker pointing at it."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # One connection shared across threads, serialized by the lock.
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS scores (key TEXT PRIMARY KEY, score REAL, kind TEXT)")

    def get_many(self, keys: Sequence[str]) -> dict[str, CachedScore]:
        found: dict[str, CachedScore] = {}
        with self._lock:
            for start in range(0, len(keys), 500):  # stay under sqlite's bound-parameter limit
                chunk = list(keys[start : start + 500])
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(f"SELECT key, score, kind FROM scores WHERE key IN ({marks})", chunk)
                for key, score, kind in rows:
                    found[key] = CachedScore(score, cast(ScoreKind, kind))
        return found

    def set_many(self, entries: Mapping[str, CachedScore]) -> None:
        with self._lock:
            self._db.executemany(
                "INSERT OR REPLACE INTO scores (key, score, kind) VALUES (?, ?, ?)",
                [(key, value.score, value.score_kind) for key, value in entries.items()],
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()


def open_cache(setting: bool | str, *, max_entries: int = 100_000) -> ScoreCache | None:
    """The store a `cache=` setting names: False/None, True or "memory", or "sqlite:///path.db"."""
    if setting is False:
        return None
    if setting is True or setting == "memory":
        return MemoryScoreCache(max_entries)
    if isinstance(setting, str) and setting.startswith("sqlite:///"):
        return SQLiteScoreCache(setting.removeprefix("sqlite:///"))
    raise ConfigurationError(f"unknown cache setting {setting!r}", hint='Use true, "memory" or "sqlite:///path.db"')


class CachingReranker(Reranker):
    """Wraps `inner`; documents already scored for this query by the same provider and model are not resent."""

    def __init__(self, inner: Reranker, cache: ScoreCache) -> None:
        self.inner = inner
        self.cache = cache
        self.provider = inner.provider
        self.model = inner.model
        self.normalize = inner.normalize  # scores are cached raw; the outermost response normalizes them

    def __repr__(self) -> str:
        return f"CachingReranker({self.inner!r}, cache={type(self.cache).__name__})"

    def warm_up(self) -> None:
        self.inner.warm_up()

    def close(self) -> None:
        self.inner.close()

    async def aclose(self) -> None:
        await self.inner.aclose()

    def _score(self, query: str, documents: list[Document], top_n: int | None) -> Scores:
        keys = self._keys(query, documents)
        hits = self.cache.get_many(keys)
        missing = [i for i, key in enumerate(keys) if key not in hits]
        # A top_n hint would leave some misses unscored, and unscored documents cannot be cached.
        fresh = self.inner._score(query, [documents[i] for i in missing], None) if missing else None
        if fresh is not None:
            self.cache.set_many(self._entries(keys, missing, fresh))
        return self._merge(keys, hits, missing, fresh)

    async def _ascore(self, query: str, documents: list[Document], top_n: int | None) -> Scores:
        # Disk-backed stores block, so they run off the event loop; the in-memory LRU is too quick to bother.
        in_memory = isinstance(self.cache, MemoryScoreCache)
        keys = self._keys(query, documents)
        hits = self.cache.get_many(keys) if in_memory else await asyncio.to_thread(self.cache.get_many, keys)
        missing = [i for i, key in enumerate(keys) if key not in hits]
        fresh = await self.inner._ascore(query, [documents[i] for i in missing], None) if missing else None
        if fresh is not None:
            entries = self._entries(keys, missing, fresh)
            if in_memory:
                self.cache.set_many(entries)
            else:
                await asyncio.to_thread(self.cache.set_many, entries)
        return self._merge(keys, hits, missing, fresh)

    def _keys(self, query: str, documents: list[Document]) -> list[str]:
        signature = self.inner.scoring_signature
        return [cache_key(signature, query, doc.text) for doc in documents]

    @staticmethod
    def _entries(keys: list[str], missing: list[int], fresh: Scores) -> dict[str, CachedScore]:
        return {
            keys[position]: CachedScore(fresh.scores[j], fresh.score_kind)
            for j, position in enumerate(missing)
            if j in fresh.scores
        }

    def _merge(self, keys: list[str], hits: dict[str, CachedScore], missing: list[int], fresh: Scores | None) -> Scores:
        stats = CacheStats(hits=len(keys) - len(missing), misses=len(missing))
        kinds = {hit.score_kind for hit in hits.values()}
        merged = Scores(
            scores={i: hits[key].score for i, key in enumerate(keys) if key in hits},
            provider=self.inner.provider,
            model=self.inner.model,
            score_kind=kinds.pop() if len(kinds) == 1 else "unknown",
            cache=stats,
        )
        if fresh is not None:
            merged.scores.update({missing[j]: score for j, score in fresh.scores.items()})
            merged.windows.update({missing[j]: window for j, window in fresh.windows.items()})
            merged.provider, merged.model, merged.score_kind = fresh.provider, fresh.model, fresh.score_kind
            merged.usage, merged.request_ids = fresh.usage, fresh.request_ids
        logger.debug("rerank cache: %d hits, %d misses (%s)", stats.hits, stats.misses, self.provider)
        return merged
