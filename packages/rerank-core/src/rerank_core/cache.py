"""Score cache: never pay twice for the same (provider, model, query, scored content) pair.

`CachingReranker` wraps any reranker, looks every document up first and sends only the misses. The key holds
exactly what the inner reranker scores (`Reranker.scored_content`: the text, plus the metadata that goes on the
wire with `rank_fields` / `send_metadata`), so two documents with one text but different scored metadata never
share a score. Identical misses of concurrent calls are fetched once: later calls wait for the first one's answer.
Stores follow the small `ScoreCache` protocol; two ship here: an in-memory LRU and a sqlite file (standard
library, thread-safe, shareable between processes).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import NamedTuple, Protocol, cast, runtime_checkable

from rerank_core.base import Reranker, Scores, ascore_with, score_with
from rerank_core.errors import ConfigurationError, RerankError
from rerank_core.models import CacheStats, Document, ScoreKind, Usage, Window

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
    """`signature` is the reranker's `scoring_signature`: provider, model and whatever else shapes its scores;
    `text` is the document's `scored_content`."""
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
    """Scores in a sqlite file that survives restarts and is shared by every reranker (and process) pointing at it.

    A store that cannot be read or written at call time (disk full, file locked longer than `busy_timeout`) is
    logged at WARNING and treated as a miss: the cache never fails a rerank that the provider can answer.
    """

    def __init__(self, path: str | Path, *, busy_timeout: float = 10.0) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # One connection shared across threads, serialized by the lock; other processes wait up to
            # `busy_timeout` seconds for a write lock instead of failing at once.
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=busy_timeout)
            self._set_up(time.monotonic() + busy_timeout)
        except (OSError, sqlite3.Error) as error:
            raise ConfigurationError(
                f"cache: cannot open the sqlite file {str(self.path)!r} ({error})",
                hint='Point cache="sqlite:///path/to/scores.db" at a writable file (its folder is created)',
            ) from None

    def _set_up(self, deadline: float) -> None:
        # Switching a new file to WAL can answer SQLITE_BUSY at once, without the busy handler, while another
        # process opening the same file does the same: try again until the deadline.
        while True:
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("CREATE TABLE IF NOT EXISTS scores (key TEXT PRIMARY KEY, score REAL, kind TEXT)")
                return
            except sqlite3.OperationalError as error:
                if error.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() >= deadline:
                    raise
                time.sleep(0.02)

    def get_many(self, keys: Sequence[str]) -> dict[str, CachedScore]:
        found: dict[str, CachedScore] = {}
        try:
            with self._lock:
                for start in range(0, len(keys), 500):  # stay under sqlite's bound-parameter limit
                    chunk = list(keys[start : start + 500])
                    marks = ",".join("?" * len(chunk))
                    rows = self._db.execute(f"SELECT key, score, kind FROM scores WHERE key IN ({marks})", chunk)
                    for key, score, kind in rows:
                        found[key] = CachedScore(score, cast(ScoreKind, kind))
        except sqlite3.Error as error:
            logger.warning("rerank cache: cannot read %s (%s); treating every document as a miss", self.path, error)
            return {}
        return found

    def set_many(self, entries: Mapping[str, CachedScore]) -> None:
        try:
            with self._lock:
                self._db.executemany(
                    "INSERT OR REPLACE INTO scores (key, score, kind) VALUES (?, ?, ?)",
                    [(key, value.score, value.score_kind) for key, value in entries.items()],
                )
        except sqlite3.Error as error:
            logger.warning("rerank cache: cannot write %s (%s); %d scores not cached", self.path, error, len(entries))

    def close(self) -> None:
        with self._lock:
            self._db.close()


def open_cache(setting: bool | str, *, max_entries: int = 100_000) -> ScoreCache | None:
    """The store a `cache=` setting names: False/None, True or "memory", or "sqlite:///path.db"."""
    if setting is False:
        return None
    if setting is True or setting == "memory":
        return MemoryScoreCache(max_entries)
    if isinstance(setting, str) and setting.startswith("sqlite:///") and setting.removeprefix("sqlite:///").strip():
        return SQLiteScoreCache(setting.removeprefix("sqlite:///"))
    raise ConfigurationError(
        f"unknown cache setting {setting!r}", hint='Use cache=true, "memory" or "sqlite:///path/to/scores.db"'
    )


Pending = dict[str, "Future[CachedScore | None]"]


class _SingleFlight:
    """Keys whose scores some call is fetching right now, so an identical miss waits instead of sending again.

    `concurrent.futures.Future` serves threads and event loops alike (async waiters wrap it); each future is marked
    running at once, so a cancelled waiter can never cancel it for the others.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[str, Future[CachedScore | None]] = {}

    def claim(self, keys: Iterable[str], *, wait: bool) -> tuple[list[str], Pending, Pending]:
        """(keys this call fetches, the futures it registered for them, futures of keys another call is
        fetching). With `wait=False` the caller fetches every key itself and registers only the free ones (a sync
        call on an event loop's thread must never block on that loop)."""
        mine: list[str] = []
        owned: Pending = {}
        theirs: Pending = {}
        with self._lock:
            for key in keys:
                pending = self._pending.get(key)
                if pending is not None and wait:
                    theirs[key] = pending
                    continue
                mine.append(key)
                if pending is None:
                    future: Future[CachedScore | None] = Future()
                    future.set_running_or_notify_cancel()
                    self._pending[key] = owned[key] = future
        return mine, owned, theirs

    def resolve(self, owned: Pending, found: Mapping[str, CachedScore], error: BaseException | None) -> None:
        """Answer the waiters of the futures this call registered (and only those)."""
        with self._lock:
            for key, future in owned.items():
                if self._pending.get(key) is future:
                    del self._pending[key]
        for key, future in owned.items():
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(found.get(key))


class _Retry(Exception):
    """The call fetching a key went away without a provider error (cancelled, crashed): fetch it ourselves."""


def _outcome(future: Future[CachedScore | None]) -> CachedScore | None:
    try:
        return future.result()
    except RerankError:
        raise  # the provider's answer for this very content; this call would get the same
    except BaseException:
        raise _Retry() from None


class _Call:
    """One call's bookkeeping: a key per document, the scores found so far, and what the provider reported."""

    def __init__(self, keys: list[str]) -> None:
        self.keys = keys
        self.unique = list(dict.fromkeys(keys))
        self.found: dict[str, CachedScore] = {}
        self.misses = 0
        self.fresh: list[tuple[list[str], Scores]] = []

    def first_positions(self, keys: list[str]) -> list[int]:
        first = {key: i for i, key in reversed(list(enumerate(self.keys)))}
        return [first[key] for key in keys]

    def add_fresh(self, sent: list[str], scored: Scores) -> dict[str, CachedScore]:
        entries = {sent[j]: CachedScore(score, scored.score_kind) for j, score in scored.scores.items()}
        self.found.update(entries)
        self.fresh.append((sent, scored))
        return entries

    def result(self, inner: Reranker) -> Scores:
        kinds = {self.found[key].score_kind for key in self.unique if key in self.found}
        merged = Scores(
            scores={i: self.found[key].score for i, key in enumerate(self.keys) if key in self.found},
            provider=inner.provider,
            model=inner.model,
            score_kind=kinds.pop() if len(kinds) == 1 else "unknown",
            cache=CacheStats(hits=len(self.keys) - self.misses, misses=self.misses),
        )
        usage, windows = Usage(), {}
        for sent, scored in self.fresh:
            merged.provider, merged.model = scored.provider, scored.model
            usage = usage + scored.usage
            merged.request_ids += scored.request_ids
            windows.update({sent[j]: window for j, window in scored.windows.items()})
        merged.usage = usage if self.fresh else merged.usage
        merged.windows = _by_position(self.keys, windows)
        return merged


def _by_position(keys: list[str], windows: Mapping[str, Window]) -> dict[int, Window]:
    return {i: windows[key] for i, key in enumerate(keys) if key in windows}


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class CachingReranker(Reranker):
    """Wraps `inner`; documents already scored for this query by the same provider and model are not resent."""

    def __init__(self, inner: Reranker, cache: ScoreCache, *, owns_cache: bool = False) -> None:
        """`owns_cache=True` (what `load_reranker` passes for the store it opened): `close()` closes the store
        too, so building and closing rerankers leaks no sqlite connection. A store you pass in stays yours."""
        self.inner = inner
        self.cache = cache
        self.owns_cache = owns_cache
        self.provider = inner.provider
        self.model = inner.model
        self.normalize = inner.normalize  # scores are cached raw; the outermost response normalizes them
        self._single_flight = _SingleFlight()

    def __repr__(self) -> str:
        return f"CachingReranker({self.inner!r}, cache={type(self.cache).__name__})"

    def warm_up(self) -> None:
        self.inner.warm_up()

    def close(self) -> None:
        self.inner.close()
        self._close_cache()

    async def aclose(self) -> None:
        await self.inner.aclose()
        self._close_cache()

    def _close_cache(self) -> None:
        close = getattr(self.cache, "close", None)
        if self.owns_cache and callable(close):
            close()

    def scored_content(self, document: Document) -> str:
        return self.inner.scored_content(document)

    def _score(self, query: str, documents: list[Document], top_n: int | None) -> Scores:
        return self._cached(query, documents, None)

    async def _ascore(self, query: str, documents: list[Document], top_n: int | None) -> Scores:
        return await self._acached(query, documents, None)

    @property
    def accepts_instruction(self) -> bool:
        return self.inner.accepts_instruction

    def _score_instructed(self, query: str, documents: list[Document], top_n: int | None, instruction: str) -> Scores:
        return self._cached(query, documents, instruction)

    async def _ascore_instructed(
        self, query: str, documents: list[Document], top_n: int | None, instruction: str
    ) -> Scores:
        return await self._acached(query, documents, instruction)

    def _cached(self, query: str, documents: list[Document], instruction: str | None) -> Scores:
        keys, unique = self._lookup(query, documents, instruction)
        call = self._begin(keys, self.cache.get_many(unique))
        pending = [key for key in call.unique if key not in call.found]
        wait = not _in_event_loop()
        while pending:
            mine, owned, theirs = self._single_flight.claim(pending, wait=wait)
            if mine:
                # No top_n hint: a document left unscored by the provider could not be cached.
                positions = call.first_positions(mine)
                try:
                    scored = score_with(self.inner, query, [documents[i] for i in positions], None, instruction)
                    entries = call.add_fresh(mine, scored)
                    self.cache.set_many(entries)
                except BaseException as error:
                    self._single_flight.resolve(owned, {}, error)
                    raise
                self._single_flight.resolve(owned, entries, None)
            pending = []
            for key, future in theirs.items():
                try:
                    self._settle(call, key, _outcome(future))
                except _Retry:
                    pending.append(key)
        return self._finish_call(call)

    async def _acached(self, query: str, documents: list[Document], instruction: str | None) -> Scores:
        keys, unique = self._lookup(query, documents, instruction)
        call = self._begin(keys, await self._aget_many(unique))
        pending = [key for key in call.unique if key not in call.found]
        while pending:
            mine, owned, theirs = self._single_flight.claim(pending, wait=True)
            if mine:
                positions = call.first_positions(mine)
                try:
                    scored = await ascore_with(self.inner, query, [documents[i] for i in positions], None, instruction)
                    entries = call.add_fresh(mine, scored)
                    await self._aset_many(entries)
                except BaseException as error:
                    self._single_flight.resolve(owned, {}, error)
                    raise
                self._single_flight.resolve(owned, entries, None)
            pending = []
            for key, future in theirs.items():
                # shield: cancelling this waiter must not cancel the shared future for the other waiters.
                try:
                    await asyncio.shield(asyncio.wrap_future(future))
                except asyncio.CancelledError:
                    task = asyncio.current_task()
                    if not future.done() or (task is not None and task.cancelling()):
                        raise  # this waiter itself was cancelled, not (only) the call it waited for
                except BaseException:
                    pass  # the other call's outcome is read from the future just below
                try:
                    self._settle(call, key, _outcome(future))
                except _Retry:
                    pending.append(key)
        return self._finish_call(call)

    # -- shared steps -----------------------------------------------------------------------------------------

    def _keys(self, query: str, documents: list[Document], instruction: str | None = None) -> list[str]:
        signature = self.inner.scoring_signature
        if instruction is not None:  # a per-call instruction scores differently from the default
            signature = "\x00".join((signature, "instruction", instruction))
        return [cache_key(signature, query, self.inner.scored_content(doc)) for doc in documents]

    def _lookup(self, query: str, documents: list[Document], instruction: str | None) -> tuple[list[str], list[str]]:
        """Each document's key, and the distinct keys to look up."""
        keys = self._keys(query, documents, instruction)
        return keys, list(dict.fromkeys(keys))

    # Disk-backed stores block, so they run off the event loop; the in-memory LRU is too quick to bother.

    async def _aget_many(self, keys: list[str]) -> dict[str, CachedScore]:
        if isinstance(self.cache, MemoryScoreCache):
            return self.cache.get_many(keys)
        return await asyncio.to_thread(self.cache.get_many, keys)

    async def _aset_many(self, entries: dict[str, CachedScore]) -> None:
        if isinstance(self.cache, MemoryScoreCache):
            self.cache.set_many(entries)
        else:
            await asyncio.to_thread(self.cache.set_many, entries)

    @staticmethod
    def _begin(keys: list[str], hits: dict[str, CachedScore]) -> _Call:
        call = _Call(keys)
        call.found.update(hits)
        call.misses = sum(1 for key in keys if key not in hits)
        return call

    @staticmethod
    def _settle(call: _Call, key: str, value: CachedScore | None) -> None:
        if value is not None:  # None: the provider left that document unscored for the other call too
            call.found[key] = value

    def _finish_call(self, call: _Call) -> Scores:
        merged = call.result(self.inner)
        stats = merged.cache
        assert stats is not None
        logger.debug("rerank cache: %d hits, %d misses (%s)", stats.hits, stats.misses, self.provider)
        return merged
