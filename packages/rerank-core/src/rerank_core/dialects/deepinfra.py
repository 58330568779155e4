"""DeepInfra: `POST https://api.deepinfra.com/v1/inference/{model}`, the model named in the path.

The body is `{query, documents}` with no top-n (cut on the client). The answer is a bare list of `scores` in
input order, documented as relevance probabilities in [0, 1]. The key is a bearer token (DEEPINFRA_TOKEN, as
DeepInfra's docs name it). `input_tokens`, where the answer carries it, is read as usage (not documented on the
reranker page).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from rerank_core.dialects.base import Dialect, ParsedResponse, string_or_none, usage_count
from rerank_core.errors import ResponseFormatError
from rerank_core.models import Document, Usage


class DeepInfraDialect(Dialect):
    name = "deepinfra"
    default_base_url = "https://api.deepinfra.com"
    path = "/v1/inference/{model}"
    api_key_env = "DEEPINFRA_TOKEN"
    requires_model = True
    sends_top_n = False
    score_kind = "probability"  # "relevance probabilities in the range [0, 1]" (DeepInfra's reranker docs)

    def path_for(self, model: str | None) -> str:
        return self.path.format(model=(model or "").strip("/"))

    def request_body(
        self,
        query: str,
        documents: Sequence[Document],
        *,
        model: str | None,
        top_n: int | None,
        options: Mapping[str, Any],
    ) -> dict[str, Any]:
        return {"query": query, "documents": [doc.text for doc in documents]}

    def parse(self, payload: Any, *, headers: Mapping[str, str], n_documents: int) -> ParsedResponse:
        scores = payload.get("scores") if isinstance(payload, dict) else None
        if not isinstance(scores, list):
            raise ResponseFormatError("response has no scores list", provider=self.name)
        if len(scores) != n_documents:
            raise ResponseFormatError(
                f"the provider returned {len(scores)} scores for {n_documents} documents", provider=self.name
            )
        pairs: list[tuple[int, float]] = []
        for index, score in enumerate(scores):
            if isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score):
                raise ResponseFormatError(f"score {index} is not a finite number: {score!r}", provider=self.name)
            pairs.append((index, float(score)))
        tokens = usage_count(payload.get("input_tokens"))
        return ParsedResponse(
            scores=pairs,
            usage=Usage(prompt_tokens=tokens, total_tokens=tokens),
            request_id=string_or_none(payload, "request_id"),
        )
