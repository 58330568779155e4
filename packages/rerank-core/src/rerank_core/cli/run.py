"""Scoring for `rerank QUERY DOCS` (one query, documents streamed in batches) and `rerank --queries`
(many queries at once, each written as soon as it and the ones before it are done)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from rerank_core.base import Reranker
from rerank_core.cli.common import INTERRUPT, Progress, describe
from rerank_core.cli.inputs import Query
from rerank_core.cli.output import Outcome, Writer
from rerank_core.errors import RerankError
from rerank_core.models import CacheStats, Document, RerankResponse, RerankResult, Usage


@dataclass
class Settings:
    top_n: int | None
    score_threshold: float | None
    concurrency: int
    batch_size: int
    fail_fast: bool
    instruction: str | None = None

    async def rerank(self, reranker: Reranker, query: str, documents: list[Document]) -> RerankResponse:
        """One call with the command's top_n, threshold and instruction."""
        return await reranker.arerank(
            query, documents, self.top_n, score_threshold=self.score_threshold, instruction=self.instruction
        )


def batches(documents: Iterable[tuple[Document, float]], size: int) -> Iterator[tuple[list[Document], float]]:
    batch: list[Document] = []
    fraction = 0.0
    for document, fraction in documents:
        batch.append(document)
        if len(batch) == size:
            yield batch, fraction
            batch = []
    if batch:
        yield batch, fraction


@dataclass
class Merged:
    """The running ranking of one query over its batches; holds only what the output will show.

    A batch that came back in passthrough (every reranker failed on it, with `on_failure="passthrough"`) makes
    the whole answer passthrough: every document in its original order, as one call would have returned it.
    Its placeholder scores are never ranked against the real scores of other batches, and no further batch is
    sent (their scores could no longer change the answer)."""

    top_n: int | None
    results: list[RerankResult] = field(default_factory=list)
    head: list[Document] = field(default_factory=list)
    """The first `top_n` documents (all without it): the answer if a batch falls back to passthrough."""
    scored: int = 0
    usage: Usage = field(default_factory=Usage)
    cache: CacheStats | None = None
    passthrough: bool = False
    provider: str = ""
    model: str | None = None

    def keep_head(self, batch: list[Document]) -> None:
        room = len(batch) if self.top_n is None else max(self.top_n - len(self.head), 0)
        self.head.extend(batch[:room])

    def add(self, response: RerankResponse, size: int) -> None:
        if response.passthrough:
            self.passthrough = True
            self.results = []
        if not self.passthrough:
            shifted = [r.model_copy(update={"index": r.index + self.scored}) for r in response.results]
            # Scores are per (query, document), so the best of every batch contain the best overall; same order
            # as a single call: score descending, ties by input position.
            self.results = sorted([*self.results, *shifted], key=lambda r: (-r.relevance_score, r.index))
            if self.top_n is not None:
                del self.results[self.top_n :]
            self.provider, self.model = response.provider, response.model
        else:
            self.provider, self.model = "passthrough", None
        self.scored += size
        self.usage = self.usage + response.usage
        if response.cache is not None:
            before = self.cache or CacheStats(hits=0, misses=0)
            self.cache = CacheStats(
                hits=before.hits + response.cache.hits, misses=before.misses + response.cache.misses
            )

    def skip(self, size: int) -> None:
        """A batch read after the answer became passthrough: counted, not sent."""
        self.scored += size

    def response(self) -> RerankResponse:
        results = self.results
        if self.passthrough:
            results = [
                RerankResult(index=index, relevance_score=0.0, document=document)
                for index, document in enumerate(self.head)
            ]
        return RerankResponse(
            results=results,
            model=self.model,
            provider=self.provider,
            usage=self.usage,
            cache=self.cache,
            passthrough=self.passthrough,
        )


async def rerank_stream(
    reranker: Reranker,
    query: Query,
    documents: Iterable[tuple[Document, float]],
    settings: Settings,
    progress: Progress,
) -> Outcome:
    """One query over a document stream, `batch_size` documents per call: memory holds one batch plus the
    results kept for the output (the `--top-n` best, or all of them)."""
    merged = Merged(settings.top_n)
    INTERRUPT.summary = lambda: f"{merged.scored} documents scored; no ranking written (it needs every document)"
    try:
        for batch, fraction in batches(documents, settings.batch_size):
            merged.keep_head(batch)
            if merged.passthrough:
                merged.skip(len(batch))
            else:
                response = await settings.rerank(reranker, query.text, batch)
                merged.add(response, len(batch))
            progress.show(merged.scored, None, fraction)
        progress.show(merged.scored, None, 1.0, force=True)
        progress.finish()
    finally:
        await reranker.aclose()
    if merged.scored == 0:
        return Outcome(query, RerankResponse(results=[], model=reranker.model, provider=reranker.provider), 0)
    return Outcome(query, merged.response(), merged.scored)


async def rerank_many(
    reranker: Reranker,
    queries: list[Query],
    shared: list[Document],
    settings: Settings,
    writer: Writer,
    progress: Progress,
) -> int:
    """Every query, at most `concurrency` at a time, written in input order as soon as each is done (a query
    waits only for the ones before it). A failing query becomes an error record; returns how many failed."""
    gate = asyncio.Semaphore(settings.concurrency)
    finished: dict[int, Outcome | RerankError] = {}
    state = {"next": 0, "failed": 0, "done": 0}

    def emit(flush_all: bool = False) -> None:
        with INTERRUPT.held():
            while state["next"] in finished or (flush_all and finished):
                position = state["next"] if state["next"] in finished else min(finished)
                item = finished.pop(position)
                if isinstance(item, Outcome):
                    writer.result(item)
                else:
                    writer.error(queries[position], item)
                state["next"] = position + 1

    def summary() -> str:
        return f"{writer.written} of {len(queries)} queries written ({state['failed']} failed)"

    INTERRUPT.summary = summary
    INTERRUPT.on_exit[:0] = [lambda: emit(flush_all=True), writer.close]

    async def one(position: int, query: Query) -> None:
        documents = shared if query.documents is None else query.documents
        async with gate:
            try:
                response = await settings.rerank(reranker, query.text, documents)
                finished[position] = Outcome(query, response, len(documents))
            except RerankError as error:
                label = query.id or query.text[:40]
                print(f"rerank: query {label!r} failed: {describe(error)}", file=sys.stderr, flush=True)
                finished[position] = error
                state["failed"] += 1
                if settings.fail_fast:
                    for task in tasks:
                        if task is not asyncio.current_task():
                            task.cancel()
        state["done"] += 1
        emit()
        progress.show(state["done"], len(queries), force=state["done"] == len(queries))

    tasks = [asyncio.create_task(one(position, query)) for position, query in enumerate(queries)]
    try:
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        progress.finish()
        await reranker.aclose()
    emit(flush_all=True)  # after --fail-fast, the queries finished behind a cancelled one
    writer.close()
    if settings.fail_fast and state["failed"]:
        print(f"rerank: stopped at the first failure (--fail-fast): {summary()}", file=sys.stderr)
    return state["failed"]
