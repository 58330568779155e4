"""SiliconFlow: `POST https://api.siliconflow.com/v1/rerank` (mainland China: `https://api.siliconflow.cn`).

Cohere-shaped: `model` (required by the API; BAAI/bge-reranker-v2-m3 by default), `query`, string `documents`,
`top_n`, `return_documents` (always false). `max_chunks_per_doc` and `overlap_tokens` chunk long documents on the
server (documented for the BGE models). The answer is `results[{index, relevance_score}]` with Cohere-style `meta`
usage (`billed_units`, `tokens`). The key is a bearer token (SILICONFLOW_API_KEY).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rerank_core.dialects._parse import parse_results
from rerank_core.dialects.base import Dialect, ParsedResponse, string_or_none
from rerank_core.dialects.cohere import meta_usage


class SiliconFlowDialect(Dialect):
    name = "siliconflow"
    default_base_url = "https://api.siliconflow.com"
    path = "/v1/rerank"
    api_key_env = "SILICONFLOW_API_KEY"
    default_model = "BAAI/bge-reranker-v2-m3"
    options = frozenset({"max_chunks_per_doc", "overlap_tokens"})
    return_documents_field = "return_documents"

    def parse(self, payload: Any, *, headers: Mapping[str, str], n_documents: int) -> ParsedResponse:
        return ParsedResponse(
            scores=parse_results(payload, n_documents=n_documents, provider=self.name),
            usage=meta_usage(payload.get("meta") if isinstance(payload, dict) else None),
            request_id=string_or_none(payload, "id"),
        )
