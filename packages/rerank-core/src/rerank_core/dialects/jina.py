"""Jina AI: `POST https://api.jina.ai/v1/rerank`. String documents, `top_n`, `return_documents` (always false)."""

from __future__ import annotations

from rerank_core.dialects.base import Dialect


class JinaDialect(Dialect):
    name = "jina"
    default_base_url = "https://api.jina.ai"
    path = "/v1/rerank"
    api_key_env = "JINA_API_KEY"
    default_model = "jina-reranker-v2-base-multilingual"
    return_documents_field = "return_documents"
