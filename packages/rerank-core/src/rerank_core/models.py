"""The normalized request/response model shared by every provider and framework."""

from __future__ import annotations

import math
import numbers
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
    if isinstance(item, str):  # the common case first
        check_text(item, f"documents[{position}]")
        return Document(text=item)
    if isinstance(item, Document):
        check_text(item.text, f"documents[{position}].text")
        return item
    if isinstance(item, Mapping):
        text = item.get("text")
        if not isinstance(text, str):
            raise InvalidInputError(f"documents[{position}] is a mapping without a string 'text' key")
        check_text(text, f"documents[{position}]['text']")
        given = item.get("metadata")
        if given is not None and not isinstance(given, Mapping):
            raise InvalidInputError(
                f"documents[{position}]['metadata'] must be a mapping (dict), not {type(given).__name__}"
            )
        raw_id = item.get("id")
        metadata = dict(given or {})
        metadata.update({k: v for k, v in item.items() if k not in ("text", "id", "metadata")})
        return Document(text=text, id=None if raw_id is None else str(raw_id), metadata=metadata)
    raise InvalidInputError(
        f"documents[{position}] has type {type(item).__name__}; expected str, Document or a mapping with 'text'"
    )


def check_text(text: str, where: str) -> None:
    """Lone surrogates cannot be encoded as UTF-8, so no provider (nor the tokenizer) can take them."""
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise InvalidInputError(
            f"{where} holds an unpaired surrogate (U+{ord(text[error.start]):04X}) at character {error.start}",
            hint="Decode the text properly, or clean it with text.encode('utf-8', 'replace').decode()",
        ) from None


def to_documents(documents: Sequence[DocumentInput]) -> list[Document]:
    if isinstance(documents, str | bytes) or not isinstance(documents, Sequence):
        raise InvalidInputError(
            f"documents must be a list of str, Document or mappings with a 'text' key, not {type(documents).__name__}"
        )
    return [to_document(item, i) for i, item in enumerate(documents)]


def validate_query(query: object) -> str:
    if not isinstance(query, str):
        raise InvalidInputError(f"query must be a str, not {type(query).__name__}")
    if not query.strip():
        raise InvalidInputError("query is empty or blank", hint="Pass the user's question as the query")
    check_text(query, "query")
    return query


def validate_top_n(top_n: object) -> int | None:
    """Any integral number (int, numpy.int64, ...) >= 1; not a bool, not a float."""
    if top_n is None:
        return None
    if isinstance(top_n, bool) or not isinstance(top_n, numbers.Integral):
        raise InvalidInputError(f"top_n must be a positive integer or None, not {type(top_n).__name__} {top_n!r}")
    if top_n < 1:
        raise InvalidInputError(f"top_n must be a positive integer or None, not {top_n!r}", hint="Use None for all")
    return int(top_n)


def validate_threshold(score_threshold: object) -> float | None:
    """Any real number (int, float, numpy.float32, ...), finite; not a bool."""
    if score_threshold is None:
        return None
    if isinstance(score_threshold, bool) or not isinstance(score_threshold, numbers.Real):
        raise InvalidInputError(
            f"score_threshold must be a number or None, not {type(score_threshold).__name__} {score_threshold!r}"
        )
    value = float(score_threshold)
    if not math.isfinite(value):
        raise InvalidInputError(f"score_threshold must be finite, not {value}")
    return value
