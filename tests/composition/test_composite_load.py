"""Bounded load through the composites: 1,000 concurrent `arerank` and 200 threads of `rerank` on one reranker made
of a fallback chain over cached members, with the primary failing every third request. Each call is checked
for exactly its own documents and scores, so a crossed, lost or duplicated result between calls fails.

The members are in-process scorers (the HTTP client under load is covered by tests/faults/test_load*), so this
measures the chain's and the cache's own locking and bookkeeping.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from concurrent.futures import ThreadPoolExecutor

from rerank_core import CachingReranker, Document, FallbackReranker, MemoryScoreCache, ProviderError, Reranker, Scores

CALLS_ASYNC, CALLS_THREADS = 1_000, 200


def score_of(query: str, text: str) -> float:
    return (sum(map(ord, query + "|" + text)) % 997) / 997


class Scorer(Reranker):
    """Scores `score_of`; with `fail_every`, every n-th request raises a provider error (a flaky provider)."""

    def __init__(self, model: str, fail_every: int = 0) -> None:
        self.provider, self.model = "inproc", model
        self.fail_every = fail_every
        self._counter = itertools.count(1)
        self._lock = threading.Lock()
        self.requests = 0

    def _take(self) -> bool:
        with self._lock:
            self.requests += 1
            return bool(self.fail_every) and next(self._counter) % self.fail_every == 0

    def _scores(self, query: str, documents: list[Document]) -> Scores:
        if self._take():
            raise ProviderError("flaky", provider=self.provider, status_code=503)
        scores = {i: score_of(query, doc.text) for i, doc in enumerate(documents)}
        return Scores(scores=scores, provider=self.provider, model=self.model, score_kind="probability")

    def _score(self, query: str, documents: list[Document], top_n: int | None) -> Scores:
        return self._scores(query, documents)

    async def _ascore(self, query: str, documents: list[Document], top_n: int | None) -> Scores:
        await asyncio.sleep(0)  # yield, so calls interleave
        return self._scores(query, documents)


def chain() -> tuple[FallbackReranker, Scorer, Scorer]:
    store = MemoryScoreCache(max_entries=1_000_000)
    primary, backup = Scorer("primary", fail_every=3), Scorer("backup")
    reranker = FallbackReranker(
        [CachingReranker(primary, store), CachingReranker(backup, store)], failure_threshold=10**6
    )
    return reranker, primary, backup


def call_args(n: int) -> tuple[str, list[Document]]:
    # A few shared queries and documents (cache hits and coalescing across calls), plus a document of its own.
    query = f"query {n % 7}"
    docs = [Document(text=f"own {n}", id=f"{n}-own"), Document(text=f"shared {n % 11}", id=f"{n}-shared")]
    docs += [Document(text=f"common {k}", id=f"{n}-c{k}") for k in range(3)]
    return query, docs


def check(n: int, query: str, docs: list[Document], response: object) -> None:
    from rerank_core import RerankResponse

    assert isinstance(response, RerankResponse)
    assert sorted(r.index for r in response.results) == list(range(len(docs)))
    for result in response.results:
        assert result.document is docs[result.index]  # its own document object, nobody else's
        assert result.relevance_score == score_of(query, docs[result.index].text), (n, result)


async def test_a_thousand_concurrent_async_calls_each_get_their_own_answer() -> None:
    reranker, primary, backup = chain()

    async def one(n: int) -> None:
        query, docs = call_args(n)
        check(n, query, docs, await reranker.arerank(query, docs))

    await asyncio.gather(*(one(n) for n in range(CALLS_ASYNC)))
    assert backup.requests > 0  # the flaky primary did hand calls over
    assert primary.requests > backup.requests


def test_two_hundred_threads_each_get_their_own_answer() -> None:
    reranker, _primary, backup = chain()

    def one(n: int) -> None:
        query, docs = call_args(n)
        check(n, query, docs, reranker.rerank(query, docs))

    with ThreadPoolExecutor(max_workers=CALLS_THREADS) as pool:
        list(pool.map(one, range(CALLS_THREADS * 3)))
    assert backup.requests > 0
