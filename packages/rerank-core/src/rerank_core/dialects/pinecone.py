"""Pinecone Inference: `POST https://api.pinecone.io/rerank`.

Authenticates with an `Api-Key` header (not Bearer) plus a pinned `X-Pinecone-Api-Version`. Documents are always
objects (`{"text": ...}`, plus the caller's `rank_fields` taken from metadata); model-specific settings such as
`truncate` go in `parameters`. Results come under `data` with `score`; usage is `usage.rerank_units`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rerank_core.dialects._documents import as_object, rank_fields_of
from rerank_core.dialects.base import Dialect
from rerank_core.models import Document

API_VERSION = "2025-10"


class PineconeDialect(Dialect):
    name = "pinecone"
    default_base_url = "https://api.pinecone.io"
    path = "/rerank"
    api_key_env = "PINECONE_API_KEY"
    default_model = "bge-reranker-v2-m3"
    options = frozenset({"rank_fields", "parameters"})
    return_documents_field = "return_documents"

    def headers(self, api_key: str | None) -> dict[str, str]:
        headers = {"X-Pinecone-Api-Version": API_VERSION}
        if api_key:
            headers["Api-Key"] = api_key
        return headers

    def documents_payload(self, documents: Sequence[Document], options: Mapping[str, Any]) -> list[Any]:
        # Pinecone takes objects only, ranked by their "text" field unless rank_fields names others.
        fields = rank_fields_of(options, self.name) or ["text"]
        return [as_object(doc, fields) for doc in documents]
