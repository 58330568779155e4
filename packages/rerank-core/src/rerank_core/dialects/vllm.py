"""vLLM's rerank endpoint: `POST <base_url>/rerank` (also `/v1/rerank`, `/v2/rerank`; Jina/Cohere-like).

On vLLM `top_n=0` means "all" and `top_n: null` is rejected, so `top_n` is sent only when set. vLLM applies the
model's *own* configured activation: a cross-encoder that configures none (ms-marco-MiniLM-L-6-v2) gets raw
logits, so the score kind is "unknown" (a value outside [0, 1] then proves it is no probability) unless
`use_activation=False`, which always gives logits. The request options vLLM documents are passed through.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rerank_core.dialects.base import Dialect, choices
from rerank_core.models import ScoreKind


class VLLMDialect(Dialect):
    name = "vllm"
    default_base_url = None
    path = "/rerank"
    requires_api_key = False
    instruction_field = "instruction"
    options = frozenset(
        {
            "truncate_prompt_tokens",
            "priority",
            "use_activation",
            "instruction",
            "max_tokens_per_doc",
            "max_tokens_per_query",
            "truncation_side",
        }
    )
    option_choices = choices(use_activation=(True, False), truncation_side=("left", "right"))

    def score_kind_for(self, options: Mapping[str, Any]) -> ScoreKind:
        return "logit" if options.get("use_activation") is False else self.score_kind
