"""The normalized request/response model shared by every provider and framework."""

from __future__ import annotations

import math
import numbers
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from rerank_core.errors import InvalidInputError

ScoreKind: TypeAlias = Literal["probability", "logit", "cosine", "unknown"]
DropReason: TypeAlias = Literal["top_n", "score_threshold"]


DocumentId: TypeAlias = str | int
"""A document's own id: a string or an integer, kept as given (any other value is converted with `str()`)."""


class Document(BaseModel):
    """A document to rerank: its text, plus an optional id and metadata that are carried through untouched.

    The id keeps its type: a str stays a str, an integer (numpy's too) an int; anything else becomes its `str()`.
    Metadata keys may be any hashable value; values are kept by reference, never copied or encoded here.
    """

    model_config = ConfigDict(frozen=True)

    text: str
    id: DocumentId | None = None
    metadata: dict[Any, Any] = Field(default_factory=dict)

    def __init__(self, text: str | None = None, /, **data: Any) -> None:
        if text is not None:
            data["text"] = text
        try:
            super().__init__(**data)
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in item['loc']) or 'Document'}: {item['msg']}"
                for item in error.errors(include_url=False, include_input=False)
            )
            raise InvalidInputError(
                f"invalid Document ({problems})",
                hint="A Document takes text: str, id: str | int | None and metadata: a dict",
            ) from None

    @field_validator("id", mode="before")
    @classmethod
    def _keep_id_type(cls, value: object) -> object:
        return document_id(value)


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
        if other is NO_USAGE:
            return self
        if self is NO_USAGE:
            return other

        def add(a: int | None, b: int | None) -> int | None:
            return None if a is None and b is None else (a or 0) + (b or 0)

        return Usage(
            prompt_tokens=add(self.prompt_tokens, other.prompt_tokens),
            total_tokens=add(self.total_tokens, other.total_tokens),
            search_units=add(self.search_units, other.search_units),
            rerank_units=add(self.rerank_units, other.rerank_units),
        )


NO_USAGE = Usage()
"""No counter reported (models are frozen, so one instance serves every answer that reports none)."""


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


def to_document(item: DocumentInput, position: int | str) -> Document:
    """`item` as a `Document`; `position` is its index in the input (or, as a str, how an error names it)."""
    where = f"documents[{position}]" if isinstance(position, int) else position
    if isinstance(item, str):  # the common case first
        check_text(item, where)
        return Document(text=item)
    if isinstance(item, Document):
        check_text(item.text, f"{where}.text")
        return item
    if isinstance(item, Mapping):
        text = item.get("text")
        if not isinstance(text, str):
            raise InvalidInputError(f"{where} is a mapping without a string 'text' key")
        check_text(text, f"{where}['text']")
        given = item.get("metadata")
        if given is not None and not isinstance(given, Mapping):
            raise InvalidInputError(f"{where}['metadata'] must be a mapping (dict), not {type(given).__name__}")
        metadata = dict(given or {})
        metadata.update({k: v for k, v in item.items() if k not in ("text", "id", "metadata")})
        return Document(text=text, id=item.get("id"), metadata=metadata)
    raise InvalidInputError(f"{where} has type {type(item).__name__}; expected str, Document or a mapping with 'text'")


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


def document_id(value: object) -> DocumentId | None:
    """An id as the library keeps it: str and integers as they are (a numpy integer as an int), anything else
    (a UUID, a float) as its `str()`. A bool is not an integer id."""
    if value is None or type(value) is str or type(value) is int:
        return value  # the common cases, checked exactly
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    return value if isinstance(value, str) else str(value)


EXPECTED_DOCUMENTS = "a list of str, Document or mappings with a 'text' key"


def validate_documents(documents: object, name: str = "documents", expected: str = EXPECTED_DOCUMENTS) -> Sequence[Any]:
    """The documents container: any sequence (list, tuple...) but not a str or bytes, which are one document."""
    if isinstance(documents, Sequence) and not isinstance(documents, str | bytes | bytearray):
        return documents
    once = isinstance(documents, Iterable) and not isinstance(documents, str | bytes | bytearray | Mapping)
    raise InvalidInputError(
        f"{name} must be {expected}, not {type(documents).__name__}",
        hint=f"Pass list({name}): results refer to documents by their position, so they must be indexable"
        if once
        else f"Pass {expected}; wrap a single document in a list",
    )


def to_documents(documents: Sequence[DocumentInput]) -> list[Document]:
    built: list[Document] = []
    for position, item in enumerate(validate_documents(documents)):
        # A str that is ASCII, or encodes as UTF-8, needs no further check: it becomes a Document with no id and
        # no metadata, built as `model_construct` builds one, without validating again what is already checked.
        if type(item) is str and (item.isascii() or _encodable(item)):
            built.append(_text_document(item))
        else:
            built.append(to_document(item, position))
    return built


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_new = object.__new__
_set = object.__setattr__


def _text_document(text: str) -> Document:
    """`Document(text)` for a str already known to be valid: the state `model_construct` would give it."""
    document: Document = _new(Document)
    _set(document, "__dict__", {"text": text, "id": None, "metadata": {}})
    _set(document, "__pydantic_fields_set__", {"text"})
    _set(document, "__pydantic_extra__", None)
    _set(document, "__pydantic_private__", None)
    return document


# Characters that show nothing: a query made only of them (and whitespace) is blank. Format characters (zero-width
# space, joiners, BOM, soft hyphen, bidi marks), controls, lone combining marks, and the filler letters that
# render as blanks.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Mn", "Me", "Zs", "Zl", "Zp"})
_FILLERS = frozenset("\u115f\u1160\u2800\u3164\uffa0")
_VISIBLE_ASCII = re.compile(r"[!-~]")


def is_blank(text: str) -> bool:
    """True if `text` shows nothing: only whitespace, zero-width and other invisible characters."""
    if text.isascii():
        return _VISIBLE_ASCII.search(text) is None
    return not any(_visible(char) for char in text)


def _visible(char: str) -> bool:
    if char.isascii():
        return _VISIBLE_ASCII.match(char) is not None
    return char not in _FILLERS and unicodedata.category(char) not in _INVISIBLE_CATEGORIES


def validate_query(query: object, name: str = "query") -> str:
    if not isinstance(query, str):
        raise InvalidInputError(
            f"{name} must be a str, not {type(query).__name__}", hint="Pass the user's question as a string"
        )
    if is_blank(query):
        raise InvalidInputError(
            f"{name} is empty or blank (only whitespace or invisible characters such as U+200B)",
            hint="Pass the user's question as the query",
        )
    check_text(query, name)
    return query


def validate_top_n(top_n: object, name: str = "top_n", *, allow_zero: bool = False) -> int | None:
    """Any integral number (int, numpy.int64, ...) >= 1 (>= 0 with `allow_zero`); not a bool, not a float."""
    if top_n is None:
        return None
    least = 0 if allow_zero else 1
    wanted = "an integer >= 0 or None" if allow_zero else "a positive integer or None"
    if isinstance(top_n, bool) or not isinstance(top_n, numbers.Integral):
        raise InvalidInputError(f"{name} must be {wanted}, not {type(top_n).__name__} {top_n!r}")
    if top_n < least:
        raise InvalidInputError(f"{name} must be {wanted}, not {top_n!r}", hint="Use None for all")
    return int(top_n)


def validate_threshold(score_threshold: object, name: str = "score_threshold") -> float | None:
    """Any real number (int, float, numpy.float32, ...), finite; not a bool."""
    if score_threshold is None:
        return None
    if isinstance(score_threshold, bool) or not isinstance(score_threshold, numbers.Real):
        raise InvalidInputError(
            f"{name} must be a number or None, not {type(score_threshold).__name__} {score_threshold!r}"
        )
    value = float(score_threshold)
    if not math.isfinite(value):
        raise InvalidInputError(
            f"{name} must be finite, not {value}", hint="Use None to keep every score (a NaN threshold keeps none)"
        )
    return value
