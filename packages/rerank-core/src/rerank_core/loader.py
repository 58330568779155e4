"""`load_reranker`: the one entry point that turns a spec string or a dict into a reranker."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rerank_core.base import Reranker
from rerank_core.errors import ConfigurationError


def parse_spec(spec: str) -> tuple[str, str | None]:
    """`"provider:model"` -> (provider, model). The model may itself contain ':' (a local path, a tag)."""
    provider, _, model = spec.strip().partition(":")
    if not provider:
        raise ConfigurationError(f"empty provider in spec {spec!r}", hint='Use "<provider>:<model>"')
    return provider.lower(), model or None


def load_reranker(
    spec: str | Mapping[str, Any],
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    timeout: float = 30.0,
    max_retries: int = 2,
    max_documents_per_request: int | None = None,
    max_concurrency: int = 4,
    **options: Any,
) -> Reranker:
    """Build a reranker from `"<provider>:<model>"` or a dict with `provider`, `model` and the keyword options."""
    if isinstance(spec, Mapping):
        settings = dict(spec)
        provider = settings.pop("provider", None)
        if not isinstance(provider, str):
            raise ConfigurationError("config dict needs a 'provider' key")
        model = settings.pop("model", None)
        return load_reranker(f"{provider}:{model}" if model else provider, **settings)
    provider, model = parse_spec(spec)
    if provider == "local":
        from rerank_core.local import LocalCrossEncoder

        return LocalCrossEncoder(model, **options)
    from rerank_core.http import HTTPReranker

    return HTTPReranker(
        provider,
        model=model,
        api_key=api_key,
        base_url=base_url,
        timeout=timeout,
        max_retries=max_retries,
        max_documents_per_request=max_documents_per_request,
        max_concurrency=max_concurrency,
        **options,
    )
