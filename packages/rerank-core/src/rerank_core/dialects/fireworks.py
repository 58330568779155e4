"""Fireworks AI (seed 000): `POST https://api.fireworks.ai/inference/v1/rerank`.

The schema has `additionalProperties: false`, so only documented fields are ever sent. Documents are strings only,
`top_n` must be >= 1 (omitted = all), and the result list comes back under `data` with the document as a plain
string, which the shared parser ignores.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rerank_core.dialects.base import Dialect
from rerank_core.models import Document


class FireworksDialect(Dialect):
    name = "fireworks"
    default_base_url = "https://api.fireworks.ai/inference"
    path = "/v1/rerank"
    api_key_env = "FIREWORKS_API_KEY"
    default_model = "accounts/fireworks/models/qwen3-reranker-8b"
    options = frozenset({"task"})

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
        body.update(options)
        return body
