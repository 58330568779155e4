"""Mixedbread: `POST https://api.mixedbread.com/v1/reranking`.

Documents go under `input` (strings, or objects `{"text", <rank fields>}` when the caller sets `rank_fields`), the
top-n parameter is `top_k`, `return_input` replaces `return_documents`, and results come under `data` with the
score under `score`. At most 1,000 documents per request: longer lists are split.
"""

from __future__ import annotations

from rerank_core.dialects.base import Dialect, choices


class MixedbreadDialect(Dialect):
    name = "mixedbread"
    default_base_url = "https://api.mixedbread.com"
    path = "/v1/reranking"
    api_key_env = "MXBAI_API_KEY"
    default_model = "mixedbread-ai/mxbai-rerank-large-v2"
    max_documents_per_request = 1000  # the API's documented cap per request
    options = frozenset({"rank_fields", "rewrite_query"})
    option_choices = choices(rewrite_query=(True, False))
    documents_field = "input"
    top_n_field = "top_k"
    return_documents_field = "return_input"
