"""Voyage AI: `POST https://api.voyageai.com/v1/rerank`.

The top-n parameter is `top_k`, truncation is the boolean `truncation` (default true; false makes over-long
inputs an error), results come under `data`. At most 1,000 documents per request.
"""

from __future__ import annotations

from rerank_core.dialects.base import Dialect, choices


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
