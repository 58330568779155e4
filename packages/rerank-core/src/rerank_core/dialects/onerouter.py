"""OneRouter / Infron (seed 004): `POST https://llm.onerouter.pro/v1/rerank`.

The seed's example answer lists results in index order rather than score order, so the shared parser never
assumes an order: the client sorts every response, and cuts to `top_n` itself as for every provider.
"""

from __future__ import annotations

from rerank_core.dialects.base import Dialect


class OneRouterDialect(Dialect):
    name = "onerouter"
    default_base_url = "https://llm.onerouter.pro"
    path = "/v1/rerank"
    api_key_env = "ONEROUTER_API_KEY"
    default_model = "qwen/qwen3-reranker-0.6b"
