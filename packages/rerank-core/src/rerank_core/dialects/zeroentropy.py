"""ZeroEntropy: `POST https://api.zeroentropy.dev/v1/models/rerank`.

The body is `model` (zerank-2 by default), `query`, string `documents`, `top_n` and the optional `latency`
(`fast` or `slow`, the service's queue). The answer is `results[{index, relevance_score}]`; `total_tokens`, where
present, is read as usage. The key is a bearer token (ZEROENTROPY_API_KEY, as ZeroEntropy's SDK reads it).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from rerank_core.dialects._parse import parse_results
from rerank_core.dialects.base import Dialect, ParsedResponse, usage_count
from rerank_core.models import Usage


class ZeroEntropyDialect(Dialect):
    name = "zeroentropy"
    default_base_url = "https://api.zeroentropy.dev"
    path = "/v1/models/rerank"
    api_key_env = "ZEROENTROPY_API_KEY"
    default_model = "zerank-2"
    options = frozenset({"latency"})
    option_choices = MappingProxyType({"latency": ("fast", "slow")})

    def parse(self, payload: Any, *, headers: Mapping[str, str], n_documents: int) -> ParsedResponse:
        tokens = usage_count(payload.get("total_tokens")) if isinstance(payload, dict) else None
        return ParsedResponse(
            scores=parse_results(payload, n_documents=n_documents, provider=self.name),
            usage=Usage(prompt_tokens=tokens, total_tokens=tokens),
        )
