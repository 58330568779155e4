"""How documents go on the wire for APIs that take either strings or objects with `rank_fields`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rerank_core.errors import ConfigurationError
from rerank_core.models import Document


def rank_fields_of(options: Mapping[str, Any], provider: str) -> list[str] | None:
    fields = options.get("rank_fields")
    if fields is None:
        return None
    if isinstance(fields, str) or not isinstance(fields, Sequence) or not all(isinstance(f, str) for f in fields):
        raise ConfigurationError(
            f"rank_fields must be a list of field names, not {fields!r}",
            provider=provider,
            hint='e.g. options={"rank_fields": ["title", "text"]}',
        )
    if not fields:
        raise ConfigurationError(
            "rank_fields is empty",
            provider=provider,
            hint='Name at least one field, e.g. ["text"], or leave rank_fields out to send plain texts',
        )
    return list(fields)


def as_object(doc: Document, fields: Sequence[str]) -> dict[str, Any]:
    """`{"text": ..., <field>: metadata[field]}`. Only the named fields leave the process, not all metadata."""
    payload: dict[str, Any] = {"text": doc.text}
    payload.update({name: doc.metadata[name] for name in fields if name != "text" and name in doc.metadata})
    return payload


def texts_or_objects(documents: Sequence[Document], fields: Sequence[str] | None) -> list[Any]:
    """Plain strings, unless the caller chose `rank_fields`: then objects carrying those metadata fields."""
    if not fields:
        return [doc.text for doc in documents]
    return [as_object(doc, fields) for doc in documents]
