"""vLLM's rerank endpoint: `POST <base_url>/rerank` (Jina/Cohere-like).

On vLLM `top_n=0` means "all" and `top_n: null` is rejected, so `top_n` is sent only when set. `use_activation=False`
returns raw logits; `truncate_prompt_tokens` and `priority` are passed through.
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
    options = frozenset({"truncate_prompt_tokens", "priority", "use_activation"})
    option_choices = choices(use_activation=(True, False))

    def score_kind_for(self, options: Mapping[str, Any]) -> ScoreKind:
        return "logit" if options.get("use_activation") is False else self.score_kind
