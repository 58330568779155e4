"""NVIDIA NIM text reranking: `POST <base_url>/v1/ranking` on a self-hosted NIM.

The query is an object (`{"text": ...}`), documents are `passages: [{"text": ...}]`, truncation is
`truncate: "NONE" | "END"`, and the answer is `rankings: [{"index", "logit"}]`: raw logits, so `score_kind` is
"logit" (use `normalize="sigmoid"` for probabilities). `/v1/ranking` rejects any top-n field, so the client cuts.
There is no default base URL: NIM is usually self-hosted, and NVIDIA's hosted endpoints are per model. For the
hosted API pass the full endpoint, e.g.
`https://ai.api.nvidia.com/v1/retrieval/nvidia/llama-3_2-nv-rerankqa-1b-v2/reranking`, and `NVIDIA_API_KEY`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rerank_core.dialects.base import Dialect, choices
from rerank_core.models import Document


class NvidiaDialect(Dialect):
    name = "nvidia"
    default_base_url = None
    path = "/v1/ranking"
    api_key_env = "NVIDIA_API_KEY"
    requires_api_key = False
    score_kind = "logit"
    sends_top_n = False
    documents_field = "passages"
    max_documents_per_request = 512
    endpoint_names = ("ranking", "reranking")  # self-hosted `/v1/ranking`, hosted `.../<model>/reranking`
    options = frozenset({"truncate"})
    option_choices = choices(truncate=("NONE", "END"))

    def request_body(
        self,
        query: str,
        documents: Sequence[Document],
        *,
        model: str | None,
        top_n: int | None,
        options: Mapping[str, Any],
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "query": {"text": query},
            "passages": [{"text": doc.text} for doc in documents],
        }
        if model:
            body["model"] = model
        body.update(options)
        return body
