"""OpenRouter: `POST https://openrouter.ai/api/v1/rerank`, routed to the provider serving the named model.

The body is Cohere's: `model` (required, e.g. `cohere/rerank-v3.5`), `query`, string `documents`, `top_n`. The
answer carries `id`, `model`, the serving `provider`, `results[{index, relevance_score, document}]` (the echo is
ignored) and `usage{search_units, total_tokens}`: the common shape the base dialect reads. The key is a bearer
token (OPENROUTER_API_KEY).
"""

from __future__ import annotations

from rerank_core.dialects.base import Dialect


class OpenRouterDialect(Dialect):
    name = "openrouter"
    default_base_url = "https://openrouter.ai/api"
    path = "/v1/rerank"
    api_key_env = "OPENROUTER_API_KEY"
    requires_model = True
