"""The generic hosting platform's Reranker API (seed 002): `POST $BASE_URL/v1/rerank`.

Object documents carry id and metadata; `truncate`, `max_tokens_per_document`, request `metadata`, `user` and
`extra_body` (which the platform merges into the backend body) are forwarded as documented.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rerank_core.dialects.base import Dialect
from rerank_core.models import Document


class GenericDialect(Dialect):
    name = "generic"
    default_base_url = None
    path = "/v1/rerank"
    api_key_env = "RERANK_API_KEY"
    options = frozenset({"truncate", "max_tokens_per_document", "metadata", "user", "extra_body"})

    def build_body(
        self,
        query: str,
        documents: Sequence[Document],
        *,
        model: str | None,
        top_n: int | None,
        options: Mapping[str, Any],
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": model,
            "query": query,
            "documents": [_document(doc) for doc in documents],
            "return_documents": False,
        }
        if top_n is not None:
            body["top_n"] = top_n
        body.update(options)
        return body


def _document(doc: Document) -> str | dict[str, Any]:
    if doc.id is None and not doc.metadata:
        return doc.text
    payload: dict[str, Any] = {"text": doc.text}
    if doc.id is not None:
        payload["id"] = doc.id
    if doc.metadata:
        payload["metadata"] = doc.metadata
    return payload
