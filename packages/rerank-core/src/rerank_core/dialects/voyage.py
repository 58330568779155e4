"""Voyage AI: `POST https://api.voyageai.com/v1/rerank`.

The top-n parameter is `top_k`, truncation is the boolean `truncation` (default true; false makes over-long
inputs an error), results come under `data`. At most 1,000 documents per request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rerank_core.dialects.base import Dialect, choices
from rerank_core.models import Document


class VoyageDialect(Dialect):
    name = "voyage"
    default_base_url = "https://api.voyageai.com"
    path = "/v1/rerank"
    api_key_env = "VOYAGE_API_KEY"
    default_model = "rerank-2.5"
    max_documents_per_request = 1000
    options = frozenset({"truncation"})
    option_choices = choices(truncation=(True, False))

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
            body["top_k"] = top_n
        body.update(options)
        return body
