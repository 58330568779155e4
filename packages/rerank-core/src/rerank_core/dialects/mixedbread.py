"""Mixedbread: `POST https://api.mixedbread.com/v1/reranking`.

Documents go under `input` (strings, or objects `{"text", <rank fields>}` when the caller sets `rank_fields`), the
top-n parameter is `top_k`, `return_input` replaces `return_documents`, and results come under `data` with the
score under `score`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rerank_core.dialects._documents import rank_fields_of, texts_or_objects
from rerank_core.dialects.base import Dialect, choices
from rerank_core.models import Document


class MixedbreadDialect(Dialect):
    name = "mixedbread"
    default_base_url = "https://api.mixedbread.com"
    path = "/v1/reranking"
    api_key_env = "MXBAI_API_KEY"
    default_model = "mixedbread-ai/mxbai-rerank-large-v2"
    options = frozenset({"rank_fields", "rewrite_query"})
    option_choices = choices(rewrite_query=(True, False))

    def build_body(
        self,
        query: str,
        documents: Sequence[Document],
        *,
        model: str | None,
        top_n: int | None,
        options: Mapping[str, Any],
    ) -> dict[str, Any]:
        fields = rank_fields_of(options, self.name)
        body: dict[str, Any] = {
            "model": model or self.default_model,
            "query": query,
            "input": texts_or_objects(documents, fields),
            "return_input": False,
        }
        if top_n is not None:
            body["top_k"] = top_n
        if fields:
            body["rank_fields"] = fields
        if "rewrite_query" in options:
            body["rewrite_query"] = options["rewrite_query"]
        return body
