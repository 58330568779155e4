"""Together AI (seed 003): `POST https://api.together.xyz/v1/rerank`.

`additionalProperties: false`: only documented fields are sent. Documents go as strings, or, when the caller sets
`rank_fields`, as objects `{"text", <rank fields from metadata>}`. Together answers object documents with the
object JSON-encoded in `document.text`; that echo is ignored, the client re-attaches the caller's input by index.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rerank_core.dialects._documents import rank_fields_of, texts_or_objects
from rerank_core.dialects.base import Dialect
from rerank_core.models import Document


class TogetherDialect(Dialect):
    name = "together"
    default_base_url = "https://api.together.xyz"
    path = "/v1/rerank"
    api_key_env = "TOGETHER_API_KEY"
    default_model = "Salesforce/Llama-Rank-V1"
    options = frozenset({"rank_fields"})

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
            "documents": texts_or_objects(documents, fields),
            "return_documents": False,
        }
        if top_n is not None:
            body["top_n"] = top_n
        if fields:
            body["rank_fields"] = fields
        return body
