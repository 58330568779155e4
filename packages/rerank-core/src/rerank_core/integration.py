"""What the framework wrappers share: resolving their `reranker=` argument and serializing it without secrets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeAlias

from rerank_core.base import Reranker
from rerank_core.loader import load_reranker

RerankerLike: TypeAlias = Reranker | str | dict[str, Any]
"""A reranker object, a spec such as `"cohere:rerank-v3.5"`, or a `load_reranker` config dict."""


def resolve_reranker(reranker: RerankerLike, *, api_key: str | None = None) -> Reranker:
    """Use a reranker object as is; build one from a spec string or config dict."""
    if isinstance(reranker, Reranker):
        return reranker
    return load_reranker(reranker, api_key=api_key)


def public_config(reranker: RerankerLike) -> str | dict[str, Any]:
    """What a serialized pipeline stores: the spec, or the config without any `api_key` (nested ones too);
    for a reranker object, only its provider and model."""
    if isinstance(reranker, Reranker):
        return {"provider": reranker.provider, "model": reranker.model}
    if isinstance(reranker, str):
        return reranker
    cleaned: dict[str, Any] = _without_secrets(reranker)
    return cleaned


def holds_secret(value: object) -> bool:
    """True if a config (or any nested fallback member) carries a plaintext `api_key`."""
    if isinstance(value, Mapping):
        return any(key == "api_key" or holds_secret(item) for key, item in value.items())
    if isinstance(value, list | tuple):
        return any(holds_secret(item) for item in value)
    return False


def _without_secrets(value: Any) -> Any:
    # Nested too: composite configs (fallback chains) hold one config per member.
    if isinstance(value, Mapping):
        return {key: _without_secrets(item) for key, item in value.items() if key != "api_key"}
    if isinstance(value, list | tuple):
        return [_without_secrets(item) for item in value]
    return value
