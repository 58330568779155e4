"""Fireworks AI (seed 000): `POST https://api.fireworks.ai/inference/v1/rerank`.

The schema has `additionalProperties: false`, so only documented fields are ever sent. Documents are strings only,
`top_n` must be >= 1 (omitted = all), and the result list comes back under `data` with the document as a plain
string, which the shared parser ignores.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from rerank_core.dialects.base import Dialect

HOST = "api.fireworks.ai"


class FireworksDialect(Dialect):
    name = "fireworks"
    default_base_url = "https://api.fireworks.ai/inference"
    path = "/v1/rerank"
    api_key_env = "FIREWORKS_API_KEY"
    default_model = "accounts/fireworks/models/qwen3-reranker-8b"
    instruction_field = "task"
    options = frozenset({"task"})
    return_documents_field = "return_documents"
    score_kind = "probability"  # seed 000: "The relevance score between 0 and 1"

    def normalize_base(self, base: str) -> str:
        # The API lives under /inference: "https://api.fireworks.ai" or ".../v1" alone would reach another API.
        parts = urlsplit(base)
        if parts.hostname == HOST and not parts.path.startswith("/inference"):
            return f"{parts.scheme}://{parts.netloc}/inference{parts.path}"
        return base
