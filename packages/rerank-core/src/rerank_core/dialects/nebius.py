"""Nebius Token Factory (seed 001): `POST https://api.tokenfactory.nebius.com/v1/rerank[?ai_project_id=...]`.

The API has no `top_n` and always echoes each document, so the client cuts the ranking itself. `ai_project_id`
is a query parameter, not a body field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rerank_core.dialects.base import Dialect, choices

QUERY_OPTIONS = frozenset({"ai_project_id"})


class NebiusDialect(Dialect):
    name = "nebius"
    default_base_url = "https://api.tokenfactory.nebius.com"
    path = "/v1/rerank"
    api_key_env = "NEBIUS_API_KEY"
    sends_top_n = False
    default_model = "Qwen/Qwen3-Reranker-8B"
    options = frozenset({"user", "service_tier"}) | QUERY_OPTIONS
    option_choices = choices(service_tier=("auto", "default", "flex", "no-limit"))  # "over-limit" is response-only

    def query_params(self, options: Mapping[str, Any]) -> dict[str, str]:
        return {key: str(options[key]) for key in QUERY_OPTIONS if options.get(key) is not None}

    def body_options(self, options: Mapping[str, Any]) -> Mapping[str, Any]:
        return {key: value for key, value in options.items() if key not in QUERY_OPTIONS}  # those go in the URL
