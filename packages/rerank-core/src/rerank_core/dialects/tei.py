"""Hugging Face Text Embeddings Inference: `POST <base_url>/rerank`.

Documents go under `texts`; there is no model and no top-n. The answer is a bare JSON list of `{index, score}`,
and token usage comes only in the `x-compute-tokens` header. `raw_scores=True` skips the model's activation, so
scores become logits. A TEI server accepts 32 documents per request by default (`--max-client-batch-size`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rerank_core.dialects._parse import parse_results
from rerank_core.dialects.base import Dialect, ParsedResponse, choices, usage_count_text
from rerank_core.models import Document, ScoreKind, Usage


class TEIDialect(Dialect):
    name = "tei"
    default_base_url = None
    path = "/rerank"
    requires_api_key = False
    sends_top_n = False
    documents_field = "texts"
    max_documents_per_request = 32
    score_kind = "probability"  # TEI applies a sigmoid/softmax itself, whatever the model configures, unless raw_scores
    options = frozenset({"truncate", "truncation_direction", "raw_scores"})
    option_choices = choices(truncate=(True, False), truncation_direction=("Left", "Right"), raw_scores=(True, False))

    def score_kind_for(self, options: Mapping[str, Any]) -> ScoreKind:
        return "logit" if options.get("raw_scores") else self.score_kind

    def request_body(
        self,
        query: str,
        documents: Sequence[Document],
        *,
        model: str | None,
        top_n: int | None,
        options: Mapping[str, Any],
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"query": query, "texts": [doc.text for doc in documents], "return_text": False}
        body.update(options)
        return body

    def parse(self, payload: Any, *, headers: Mapping[str, str], n_documents: int) -> ParsedResponse:
        return ParsedResponse(
            scores=parse_results(payload, n_documents=n_documents, provider=self.name),
            usage=header_usage(headers),
            request_id=headers.get("x-request-id"),
        )


def header_usage(headers: Mapping[str, str]) -> Usage:
    raw = next((value for key, value in headers.items() if key.lower() == "x-compute-tokens"), None)
    tokens = usage_count_text(raw)
    return Usage(prompt_tokens=tokens, total_tokens=tokens)
