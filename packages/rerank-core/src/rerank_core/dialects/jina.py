"""Jina AI: `POST https://api.jina.ai/v1/rerank`. String documents, `top_n`, `return_documents` (always false)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rerank_core.dialects.base import Dialect
from rerank_core.models import Document


class JinaDialect(Dialect):
    name = "jina"
    default_base_url = "https://api.jina.ai"
    path = "/v1/rerank"
    api_key_env = "JINA_API_KEY"
    default_model = "jina-reranker-v2-base-multilingual"

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
            "model": model or self.default_model,
            "query": query,
            "documents": [doc.text for doc in documents],
            "return_documents": False,
        }
        if top_n is not None:
            body["top_n"] = top_n
        return body
