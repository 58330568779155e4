"""Cohere rerank: v2 (`cohere`, `POST https://api.cohere.com/v2/rerank`) and v1 (`cohere-v1`, `/v1/rerank`).

v2 takes string documents only, `max_tokens_per_doc` and `priority` (the only options of v2 rerank in the current
official SDK, cohere-python 2026-08), and has no `return_documents`. v1 also takes
object documents with `rank_fields` (sent only when the caller sets `rank_fields`), `max_chunks_per_doc` and
`return_documents`. Usage comes from `meta`: `billed_units.search_units` and `tokens.input_tokens`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from rerank_core.dialects._parse import parse_results
from rerank_core.dialects.base import Dialect, ParsedResponse, string_or_none, usage_count
from rerank_core.models import Usage


class CohereDialect(Dialect):
    name = "cohere"
    default_base_url: ClassVar[str | None] = "https://api.cohere.com"
    path = "/v2/rerank"
    api_key_env = "COHERE_API_KEY"
    default_model: ClassVar[str | None] = "rerank-v3.5"
    score_kind = "probability"  # documented as relevance scores normalized to [0, 1]
    options = frozenset({"max_tokens_per_doc", "priority"})

    def parse(self, payload: Any, *, headers: Mapping[str, str], n_documents: int) -> ParsedResponse:
        return ParsedResponse(
            scores=parse_results(payload, n_documents=n_documents, provider=self.name),
            model=None,  # Cohere does not echo the model
            usage=meta_usage(payload.get("meta") if isinstance(payload, dict) else None),
            request_id=string_or_none(payload, "id"),
        )


class CohereV1Dialect(CohereDialect):
    name = "cohere-v1"
    path = "/v1/rerank"
    options = frozenset({"rank_fields", "max_chunks_per_doc"})
    return_documents_field = "return_documents"


def meta_usage(meta: object) -> Usage:
    def number(section: str, key: str) -> int | None:
        part = meta.get(section) if isinstance(meta, dict) else None
        value = part.get(key) if isinstance(part, dict) else None
        return usage_count(value)

    input_tokens, output_tokens = number("tokens", "input_tokens"), number("tokens", "output_tokens")
    total = None if input_tokens is None else input_tokens + (output_tokens or 0)
    return Usage(prompt_tokens=input_tokens, total_tokens=total, search_units=number("billed_units", "search_units"))
