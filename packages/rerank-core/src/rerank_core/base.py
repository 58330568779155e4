"""The `Reranker` base class: one public surface, sync and async twins, for every backend.

A backend implements `_score` / `_ascore`: score a non-empty list of documents and return `Scores`. The base
class validates input, short-circuits empty lists, and turns `Scores` into a `RerankResponse` (sort, tie-break,
`top_n`, threshold, drop accounting) the same way for every backend, so no backend can get that wrong.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, Self

from rerank_core import tracing
from rerank_core.errors import InvalidInputError, UnsupportedInputError
from rerank_core.models import (
    CacheStats,
    Document,
    DocumentInput,
    DroppedDocument,
    RerankResponse,
    RerankResult,
    ScoreKind,
    Usage,
    Window,
    to_documents,
    validate_query,
    validate_threshold,
    validate_top_n,
)

Normalize = Literal["sigmoid"]


@dataclass
class Scores:
    """What a backend returns for one call: a score per input index.

    `scores` may be partial only when the backend honoured a `top_n` hint; every missing index is then reported
    as dropped for `top_n`.
    """

    scores: dict[int, float]
    provider: str
    model: str | None
    score_kind: ScoreKind = "unknown"
    usage: Usage = field(default_factory=Usage)
    request_ids: list[str] = field(default_factory=list)
    windows: dict[int, Window] = field(default_factory=dict)
    cache: CacheStats | None = None
    passthrough: bool = False


def sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def honest_kind(scores: dict[int, float], kind: ScoreKind) -> ScoreKind:
    """`kind`, unless the values disprove it: a "probability" outside [0, 1] is not one, so it becomes "unknown"."""
    if kind == "probability" and not _within_unit(scores):
        return "unknown"
    return kind


def normalized(
    scores: dict[int, float], kind: ScoreKind, normalize: Normalize | None
) -> tuple[dict[int, float], ScoreKind]:
    """The scores and their honest kind, after `normalize`.

    `"sigmoid"` maps logits to probabilities, and also "unknown" scores as soon as one of them lies outside [0, 1]
    (they are then not probabilities; self-hosted servers that apply the model's own activation often return raw
    logits). An "unknown" answer wholly inside [0, 1] is left as it is: it may already be probabilities, and a
    second sigmoid would squeeze them into [0.5, 0.73]. Where you know a server returns logits, say so with the
    option that makes it explicit (vLLM `use_activation=False`, TEI/Infinity `raw_scores=True`).
    """
    kind = honest_kind(scores, kind)
    if normalize == "sigmoid" and (kind == "logit" or (kind == "unknown" and not _within_unit(scores))):
        return {i: sigmoid(s) for i, s in scores.items()}, "probability"
    return scores, kind


def _within_unit(scores: dict[int, float]) -> bool:
    return all(0.0 <= s <= 1.0 for s in scores.values())


class Reranker(ABC):
    """Base class of every reranker: remote providers, the local cross-encoder and the composites."""

    provider: str = "unknown"
    model: str | None = None
    normalize: Normalize | None = None

    # -- public API -------------------------------------------------------------------------------------------

    def rerank(
        self,
        query: str,
        documents: Sequence[DocumentInput],
        top_n: int | None = None,
        *,
        score_threshold: float | None = None,
        instruction: str | None = None,
    ) -> RerankResponse:
        """Rank `documents` by relevance to `query`. `instruction` tells a reranker that follows instructions
        (LLM rerankers, some hosted APIs) what relevance means for this call, instead of its default; a reranker
        that cannot follow one raises `UnsupportedInputError` rather than ignoring it."""
        query, docs, top_n, score_threshold = self._prepare(query, documents, top_n, score_threshold)
        instruction = self._check_instruction(instruction)
        if not docs:
            return self._empty()
        with tracing.call_span(self, query, docs, top_n) as call:
            response = self._finish(score_with(self, query, docs, top_n, instruction), docs, top_n, score_threshold)
            tracing.record_response(call, response)
            return response

    async def arerank(
        self,
        query: str,
        documents: Sequence[DocumentInput],
        top_n: int | None = None,
        *,
        score_threshold: float | None = None,
        instruction: str | None = None,
    ) -> RerankResponse:
        query, docs, top_n, score_threshold = self._prepare(query, documents, top_n, score_threshold)
        instruction = self._check_instruction(instruction)
        if not docs:
            return self._empty()
        with tracing.call_span(self, query, docs, top_n) as call:
            scored = await ascore_with(self, query, docs, top_n, instruction)
            response = self._finish(scored, docs, top_n, score_threshold)
            tracing.record_response(call, response)
            return response

    def warm_up(self) -> None:  # noqa: B027 - optional hook; most backends have nothing to load
        """Load whatever the first call would otherwise pay for (a local model, a connection pool). Idempotent."""

    def close(self) -> None:  # noqa: B027 - optional hook; most backends hold nothing
        """Release pooled connections or models."""

    async def aclose(self) -> None:
        self.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(provider={self.provider!r}, model={self.model!r})"

    def __reduce_ex__(self, protocol: object) -> Any:
        # A live reranker holds connections, locks, a loaded model and maybe a plaintext key: none of it belongs
        # in a pickle. Its config (without the key) is what crosses to another process.
        raise TypeError(
            f"a {type(self).__name__} cannot be pickled (it holds connections or a loaded model, and maybe an API "
            "key); pickle its config instead (a spec string or dict, with api_key_env rather than api_key) and "
            "call load_reranker in the other process"
        )

    @property
    def scoring_signature(self) -> str:
        """Everything that decides a score: two rerankers with equal signatures score a pair the same way.

        The score cache keys on it, so backends add whatever besides provider and model changes their scores
        (endpoint, request options, activation, precision...). Never include secrets."""
        return f"{self.provider}\x00{self.model or ''}"

    def scored_content(self, document: Document) -> str:
        """What this reranker scores of `document`, as a string: the score cache keys on it. The text by
        default; a hosted provider adds the metadata it sends (`rank_fields`, `send_metadata`)."""
        return document.text

    @property
    def accepts_instruction(self) -> bool:
        """Whether `rerank(..., instruction=...)` is honoured (a backend that can sets this and implements
        `_score_instructed` / `_ascore_instructed`)."""
        return False

    def _check_instruction(self, instruction: object) -> str | None:
        if instruction is None:
            return None
        if not isinstance(instruction, str) or not instruction.strip():
            raise InvalidInputError(
                f"instruction must be a non-empty string or None, not {instruction!r}", provider=self.provider
            )
        refuse_instruction(self)
        return instruction

    # -- backend hooks ----------------------------------------------------------------------------------------

    @abstractmethod
    def _score(self, query: str, documents: list[Document], top_n: int | None) -> Scores:
        """Score `documents` (never empty). `top_n` is a hint the backend may pass on to the provider."""

    @abstractmethod
    async def _ascore(self, query: str, documents: list[Document], top_n: int | None) -> Scores:
        """Async twin of `_score`. Must not block the event loop."""

    def _score_instructed(self, query: str, documents: list[Document], top_n: int | None, instruction: str) -> Scores:
        """`_score` following `instruction` (only called when `accepts_instruction`)."""
        raise NotImplementedError

    async def _ascore_instructed(
        self, query: str, documents: list[Document], top_n: int | None, instruction: str
    ) -> Scores:
        """Async twin of `_score_instructed`."""
        raise NotImplementedError

    # -- shared steps -----------------------------------------------------------------------------------------

    def _prepare(
        self, query: object, documents: Sequence[DocumentInput], top_n: object, score_threshold: object
    ) -> tuple[str, list[Document], int | None, float | None]:
        return (
            validate_query(query),
            to_documents(documents),
            validate_top_n(top_n),
            validate_threshold(score_threshold),
        )

    def _empty(self) -> RerankResponse:
        return RerankResponse(results=[], model=self.model, provider=self.provider)

    def _finish(
        self, scored: Scores, documents: list[Document], top_n: int | None, score_threshold: float | None
    ) -> RerankResponse:
        return build_response(scored, documents, top_n, score_threshold, self.normalize)


def refuse_instruction(reranker: Reranker) -> None:
    """An instruction a reranker cannot follow is an error, never silently dropped."""
    if not reranker.accepts_instruction:
        raise UnsupportedInputError(
            f"{reranker!r} cannot follow an instruction",
            provider=reranker.provider,
            hint="Drop instruction=, or use a reranker that takes one: an LLM reranker on the local torch engine "
            "(Qwen3-Reranker, mxbai-rerank v2, bge-reranker-v2-gemma), vLLM, or Fireworks",
        )


def score_with(
    reranker: Reranker, query: str, documents: list[Document], top_n: int | None, instruction: str | None
) -> Scores:
    """`reranker`'s scores, following `instruction` when one is given (composites score their members so too)."""
    if instruction is None:
        return reranker._score(query, documents, top_n)
    refuse_instruction(reranker)
    return reranker._score_instructed(query, documents, top_n, instruction)


async def ascore_with(
    reranker: Reranker, query: str, documents: list[Document], top_n: int | None, instruction: str | None
) -> Scores:
    if instruction is None:
        return await reranker._ascore(query, documents, top_n)
    refuse_instruction(reranker)
    return await reranker._ascore_instructed(query, documents, top_n, instruction)


def build_response(
    scored: Scores,
    documents: list[Document],
    top_n: int | None,
    score_threshold: float | None,
    normalize: Normalize | None = None,
) -> RerankResponse:
    """Sort by score (desc, ties by index), apply the threshold then `top_n`, and account for every input."""
    scores, kind = normalized(scored.scores, scored.score_kind, normalize)

    # Indices ascending, then a stable sort by score descending: ties stay in index order. Sorting plain ints
    # with a C-level key is faster than (score, index) tuple keys and allocates no tuple per document.
    ranked = sorted(scores)
    ranked.sort(key=scores.__getitem__, reverse=True)
    dropped = (
        []
        if len(scores) == len(documents)
        else [DroppedDocument(index=i, reason="top_n") for i in range(len(documents)) if i not in scores]
    )
    if score_threshold is not None and not scored.passthrough:
        below = [i for i in ranked if scores[i] < score_threshold]
        if below:
            dropped += [DroppedDocument(index=i, reason="score_threshold") for i in below]
            ranked = [i for i in ranked if scores[i] >= score_threshold]
    if top_n is not None:
        dropped += [DroppedDocument(index=i, reason="top_n") for i in ranked[top_n:]]
        ranked = ranked[:top_n]

    windows = scored.windows
    results = (
        [
            _result({"index": i, "relevance_score": scores[i], "document": documents[i], "window": windows.get(i)})
            for i in ranked
        ]
        if windows
        else [_result({"index": i, "relevance_score": scores[i], "document": documents[i]}) for i in ranked]
    )
    return RerankResponse(
        results=results,
        model=scored.model,
        provider=scored.provider,
        usage=scored.usage,
        score_kind=kind,
        dropped=sorted(dropped, key=lambda d: d.index),
        request_ids=scored.request_ids,
        cache=scored.cache,
        passthrough=scored.passthrough,
    )


# The results are built from a mapping in one call into pydantic-core, not through `RerankResult.__init__`: the
# same validation and the same models, about a third cheaper per result (measured on 10,000 results).
_result = RerankResult.__pydantic_validator__.validate_python
