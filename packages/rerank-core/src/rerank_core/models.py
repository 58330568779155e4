"""The normalized request/response model shared by every provider and framework."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field

from rerank_core.errors import InvalidInputError

ScoreKind: TypeAlias = Literal["probability", "logit", "cosine", "unknown"]
DropReason: TypeAlias = Literal["top_n", "score_threshold"]


class Document(BaseModel):
    """A document to rerank: its text, plus an optional id and metadata that are carried through untouched."""

    model_config = ConfigDict(frozen=True)

    text: str
    id: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    def __init__(self, text: str | None = None, /, **data: Any) -> None:
        if text is not None:
            data["text"] = text
        super().__init__(**data)


DocumentInput: TypeAlias = str | Document | Mapping[str, Any]


class Window(BaseModel):
    """The span of a long document that produced its score (see `long_documents="chunk"`)."""

    model_config = ConfigDict(frozen=True)

    index: int
    start: int
    end: int
    text: str


class RerankResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    index: int
    """Position of the document in the caller's input list."""
    relevance_score: float
    document: Document
    window: Window | None = None


class Usage(BaseModel):
    model_config = ConfigDict(frozen=True)

    prompt_tokens: int | None = None
    total_tokens: int | None = None
    search_units: int | None = None
    rerank_units: int | None = None

    def __add__(self, other: Usage) -> Usage:
        def add(a: int | None, b: int | None) -> int | None:
            return None if a is None and b is None else (a or 0) + (b or 0)

        return Usage(
            prompt_tokens=add(self.prompt_tokens, other.prompt_tokens),
            total_tokens=add(self.total_tokens, other.total_tokens),
            search_units=add(self.search_units, other.search_units),
            rerank_units=add(self.rerank_units, other.rerank_units),
        )


class DroppedDocument(BaseModel):
    """An input document that is not in `results`, and why."""

    model_config = ConfigDict(frozen=True)

    index: int
    reason: DropReason


class CacheStats(BaseModel):
    model_config = ConfigDict(frozen=True)

    hits: int
    misses: int


class RerankResponse(BaseModel):
    """Results sorted by score descending, ties broken by input index. Every input index is in `results`
    or in `dropped`, exactly once."""

    model_config = ConfigDict(frozen=True)

    results: list[RerankResult]
    model: str | None
    provider: str
    usage: Usage = Field(default_factory=Usage)
    score_kind: ScoreKind = "unknown"
    dropped: list[DroppedDocument] = Field(default_factory=list)
    request_ids: list[str] = Field(default_factory=list)
    cache: CacheStats | None = None
    passthrough: bool = False
    """True when every reranker failed and the documents came back in their original order."""


def to_document(item: DocumentInput, position: int) -> Document:
    if isinstance(item, Document):
        return item
    if isinstance(item, str):
        return Document(text=item)
    if isinstance(item, Mapping):
        if not isinstance(item.get("text"), str):
            raise InvalidInputError(f"documents[{position}] is a mapping without a string 'text' key")
        raw_id = item.get("id")
        metadata = dict(item.get("metadata") or {})
        metadata.update({k: v for k, v in item.items() if k not in ("text", "id", "metadata")})
        return Document(text=item["text"], id=None if raw_id is None else str(raw_id), metadata=metadata)
    raise InvalidInputError(
        f"documents[{position}] has type {type(item).__name__}; expected str, Document or a mapping with 'text'"
    )


def to_documents(documents: Sequence[DocumentInput]) -> list[Document]:
    if isinstance(documents, str | bytes) or not isinstance(documents, Sequence):
        raise InvalidInputError("documents must be a list of str, Document or mappings with a 'text' key")
    return [to_document(item, i) for i, item in enumerate(documents)]


def validate_query(query: object) -> str:
    if not isinstance(query, str):
        raise InvalidInputError(f"query must be a str, not {type(query).__name__}")
    return query


def validate_top_n(top_n: object) -> int | None:
    if top_n is None:
        return None
    if isinstance(top_n, bool) or not isinstance(top_n, int) or top_n < 1:
        raise InvalidInputError(f"top_n must be a positive int or None, not {top_n!r}")
    return top_n


def validate_threshold(score_threshold: object) -> float | None:
    if score_threshold is None:
        return None
    if isinstance(score_threshold, bool) or not isinstance(score_threshold, int | float):
        raise InvalidInputError(f"score_threshold must be a number or None, not {score_threshold!r}")
    if not math.isfinite(score_threshold):
        raise InvalidInputError("score_threshold must be finite")
    return float(score_threshold)
