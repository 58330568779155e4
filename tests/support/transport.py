"""Helpers for the HTTP transport tests: a reranker wired to a loopback emulator, and a recorder of retry waits.

Retries really happen over HTTP; only the wait between attempts is recorded instead of slept, so a test can
assert that `retry-after: 2` produced a 2 s wait without spending 2 s.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Literal

from rerank_core import DocumentInput, HTTPReranker, RerankResponse
from rerank_core.base import Reranker
from tests.support.emulator import ProviderEmulator

API_KEY = "sk-test-9f8e7d6c5b4a-SECRET"
Mode = Literal["sync", "async"]
MODES: tuple[Mode, ...] = ("sync", "async")


class RecordedWaits:
    """Stands in for `time.sleep` / `asyncio.sleep` in a `RetryPolicy`: remembers each wait, returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)

    async def asleep(self, seconds: float) -> None:
        self.waits.append(seconds)


def make_reranker(
    target: ProviderEmulator | str | list[str],
    *,
    waits: RecordedWaits | None = None,
    api_key: str = API_KEY,
    **kwargs: Any,
) -> HTTPReranker:
    """A generic-dialect reranker for an emulator (or any base URL, or a list of replicas' base URLs)."""
    kwargs.setdefault("model", "test-model")
    base_url = target.base_url if isinstance(target, ProviderEmulator) else target
    reranker = HTTPReranker("generic", base_url=base_url, api_key=api_key, **kwargs)
    if waits is not None:
        reranker.retry_policy = dataclasses.replace(reranker.retry_policy, sleep=waits.sleep, asleep=waits.asleep)
    return reranker


async def call(
    reranker: Reranker,
    mode: Mode,
    query: str,
    documents: Sequence[DocumentInput],
    top_n: int | None = None,
    **kwargs: Any,
) -> RerankResponse:
    """`rerank` or `arerank`. Called from async tests, so "sync" also proves `rerank` works inside a running loop."""
    if mode == "sync":
        return reranker.rerank(query, documents, top_n, **kwargs)
    return await reranker.arerank(query, documents, top_n, **kwargs)


def texts(n: int, *, seed_words: Sequence[str] = ("alpha", "beta", "gamma", "delta", "omega")) -> list[str]:
    """`n` distinct documents with varied overlap with the query "alpha beta gamma delta"."""
    words = list(seed_words)
    return [" ".join(words[j] for j in range(len(words)) if (i >> j) & 1) + f" doc{i}" for i in range(n)]
