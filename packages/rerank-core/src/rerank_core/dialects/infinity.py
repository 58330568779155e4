"""Infinity (michaelfeil/infinity): `POST <base_url>/rerank`, Cohere-like.

`return_documents` is sent as false. Infinity applies a sigmoid to the model's output itself (whatever the model
configures), so scores are probabilities; `raw_scores=True` skips it (logits). The server accepts up to 2,048
documents per request by default (`INFINITY_MAX_CLIENT_BATCH_SIZE`) and answers a longer list with a pydantic 422
(`{"detail": [{"type": "too_long", "loc": ["body", "documents"], ...}]}`), not a 413: that answer splits the batch.
`usage.prompt_tokens` counts characters, not tokens (as measured against Infinity 0.0.78).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rerank_core._json import loads
from rerank_core.dialects.base import Dialect, choices
from rerank_core.models import ScoreKind


class InfinityDialect(Dialect):
    name = "infinity"
    default_base_url = None
    path = "/rerank"
    requires_api_key = False
    max_documents_per_request = 2048
    options = frozenset({"raw_scores"})
    option_choices = choices(raw_scores=(True, False))
    return_documents_field = "return_documents"
    score_kind = "probability"

    def is_batch_too_large(self, status_code: int, body: str) -> bool:
        if status_code == 413:
            return True
        if status_code != 422:
            return False
        payload = loads(body)
        detail = payload.get("detail") if isinstance(payload, dict) else None
        return isinstance(detail, list) and any(
            isinstance(item, dict)
            and item.get("type") == "too_long"
            and isinstance(item.get("loc"), list)
            and "documents" in item["loc"]
            for item in detail
        )

    def score_kind_for(self, options: Mapping[str, Any]) -> ScoreKind:
        return "logit" if options.get("raw_scores") else self.score_kind
