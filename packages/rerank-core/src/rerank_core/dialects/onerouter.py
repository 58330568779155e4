"""OneRouter / Infron (seed 004): `POST https://llm.onerouter.pro/v1/rerank`.

Results come back in index order rather than score order, and `top_n` is not honoured. `top_n` is still sent
(it is documented), and the shared parser never assumes an order: the client sorts and cuts every response.
"""

from __future__ import annotations

from rerank_core.dialects.base import Dialect


class OneRouterDialect(Dialect):
    name = "onerouter"
    default_base_url = "https://llm.onerouter.pro"
    path = "/v1/rerank"
    api_key_env = "ONEROUTER_API_KEY"
    default_model = "qwen/qwen3-reranker-0.6b"
