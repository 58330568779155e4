"""Voyage AI: `POST https://api.voyageai.com/v1/rerank`, or MongoDB Atlas' twin `https://ai.mongodb.com/v1/rerank`.

The top-n parameter is `top_k`, truncation is the boolean `truncation` (default true; false makes over-long
inputs an error), results come under `data`. At most 1,000 documents per request. Keys issued through MongoDB
Atlas start with `al-` and only work on `ai.mongodb.com`: without an explicit `base_url` they go there, as the
official voyageai client decides (`get_default_base_url` in voyageai/util.py) and litellm does.
"""

from __future__ import annotations

from rerank_core.dialects.base import Dialect, choices

ATLAS_BASE_URL = "https://ai.mongodb.com"
ATLAS_KEY_PREFIX = "al-"


class VoyageDialect(Dialect):
    name = "voyage"
    default_base_url = "https://api.voyageai.com"
    path = "/v1/rerank"
    api_key_env = "VOYAGE_API_KEY"
    default_model = "rerank-2.5"
    max_documents_per_request = 1000
    options = frozenset({"truncation"})
    option_choices = choices(truncation=(True, False))
    top_n_field = "top_k"
    return_documents_field = "return_documents"

    def default_base_url_for(self, api_key: str | None) -> str | None:
        if api_key and api_key.startswith(ATLAS_KEY_PREFIX):
            return ATLAS_BASE_URL
        return self.default_base_url
