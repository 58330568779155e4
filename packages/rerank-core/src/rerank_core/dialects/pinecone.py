"""Pinecone Inference: `POST https://api.pinecone.io/rerank`.

Authenticates with an `Api-Key` header (not Bearer) plus a pinned `X-Pinecone-Api-Version` (2025-10, the version
the official SDK sends). Documents are always objects (`{"text": ...}`, plus the caller's `rank_fields` taken
from metadata); model-specific settings such as `truncate` go in `parameters`. Results come under `data` with
`score`, documented as normalized to [0, 1]; usage is `usage.rerank_units`; the request id is the
`x-pinecone-request-id` header. Each hosted model caps the documents per request (see `MODEL_CAPS`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rerank_core.dialects._documents import as_object, rank_fields_of
from rerank_core.dialects.base import Dialect, ParsedResponse, warn_missing_rank_fields
from rerank_core.models import Document

API_VERSION = "2025-10"
MODEL_CAPS = {
    "cohere-rerank-4-fast": 250,
    "cohere-rerank-3.5": 200,  # deprecated by Pinecone (2026-07) and served by cohere-rerank-4-fast; cap kept
    "bge-reranker-v2-m3": 100,
    "pinecone-rerank-v0": 100,
}
"""Documents per request, from Pinecone's model guide (docs.pinecone.io/guides/search/rerank-results)."""
DEFAULT_CAP = 100  # the smallest documented cap, for a model not listed here


class PineconeDialect(Dialect):
    name = "pinecone"
    default_base_url = "https://api.pinecone.io"
    api_key_env = "PINECONE_API_KEY"
    default_model = "bge-reranker-v2-m3"
    score_kind = "probability"
    max_documents_per_request = DEFAULT_CAP
    options = frozenset({"rank_fields", "parameters"})
    return_documents_field = "return_documents"

    def max_documents_for(self, model: str | None) -> int | None:
        return MODEL_CAPS.get(model or "", DEFAULT_CAP)

    def headers(self, api_key: str | None) -> dict[str, str]:
        headers = {"X-Pinecone-Api-Version": API_VERSION}
        if api_key:
            headers["Api-Key"] = api_key
        return headers

    def documents_payload(self, documents: Sequence[Document], options: Mapping[str, Any]) -> list[Any]:
        # Pinecone takes objects only, ranked by their "text" field unless rank_fields names others.
        fields = rank_fields_of(options, self.name) or ["text"]
        warn_missing_rank_fields(documents, fields, self.name)
        return [as_object(doc, fields) for doc in documents]

    def parse(self, payload: Any, *, headers: Mapping[str, str], n_documents: int) -> ParsedResponse:
        parsed = super().parse(payload, headers=headers, n_documents=n_documents)
        request_id = next((v for k, v in headers.items() if k.lower() == "x-pinecone-request-id"), None)
        parsed.request_id = parsed.request_id or request_id
        return parsed
