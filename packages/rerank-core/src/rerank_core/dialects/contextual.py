"""Contextual AI's instruction-following reranker: `POST https://api.contextual.ai/v1/rerank`.

The body is `model` (ctxl-rerank-v2-instruct-multilingual by default), `query`, string `documents`, `top_n`,
`instruction` (how to prioritise: recency, source, ...) and `metadata`, one string per document that the
instruction can refer to. Metadata leaves the process only when asked: `send_metadata` names the fields (or
`True` for all), each document's sent as `key: value` lines, an empty string for a document with none. The
answer is `results[{index, relevance_score}]`. The key is a bearer token (CONTEXTUAL_API_KEY).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rerank_core.dialects.base import Dialect
from rerank_core.errors import ConfigurationError
from rerank_core.models import Document


class ContextualDialect(Dialect):
    name = "contextual"
    default_base_url = "https://api.contextual.ai"
    path = "/v1/rerank"
    api_key_env = "CONTEXTUAL_API_KEY"
    default_model = "ctxl-rerank-v2-instruct-multilingual"
    options = frozenset({"send_metadata"})
    instruction_field = "instruction"

    def check_options(self, options: Mapping[str, Any]) -> None:
        super().check_options(options)
        chosen = options.get("send_metadata", False)
        if not isinstance(chosen, bool) and not (
            isinstance(chosen, list) and chosen and all(isinstance(name, str) for name in chosen)
        ):
            raise ConfigurationError(
                f"send_metadata must be true, false or a list of metadata field names, not {chosen!r}",
                provider=self.name,
                hint='e.g. options={"send_metadata": ["date", "source"]}',
            )

    def request_body(
        self,
        query: str,
        documents: Sequence[Document],
        *,
        model: str | None,
        top_n: int | None,
        options: Mapping[str, Any],
    ) -> dict[str, Any]:
        chosen = options.get("send_metadata", False)
        rest = {key: value for key, value in options.items() if key != "send_metadata"}
        body = super().request_body(query, documents, model=model, top_n=top_n, options=rest)
        if chosen:
            body["metadata"] = [metadata_text(doc, chosen) for doc in documents]
        return body


def metadata_text(doc: Document, chosen: bool | list[str]) -> str:
    names = list(doc.metadata) if chosen is True else [name for name in chosen or () if name in doc.metadata]
    return "\n".join(f"{name}: {doc.metadata[name]}" for name in names)
