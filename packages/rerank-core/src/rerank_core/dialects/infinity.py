"""Infinity (michaelfeil/infinity): `POST <base_url>/rerank`, Cohere-like.

`return_documents` is sent as false, `raw_scores=True` skips the sigmoid (scores become logits). The server
accepts up to 2,048 documents per request by default (`INFINITY_MAX_CLIENT_BATCH_SIZE`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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

    def score_kind_for(self, options: Mapping[str, Any]) -> ScoreKind:
        return "logit" if options.get("raw_scores") else self.score_kind
