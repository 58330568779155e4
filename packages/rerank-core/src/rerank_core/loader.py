"""`load_reranker`: the one entry point that turns any config form into a ready reranker.

Every form (spec string, dict, `RerankerConfig`, TOML/YAML/JSON file, `RERANK_*` environment variables) becomes
a `RerankerConfig` first, and the reranker is built from that, so all forms behave the same. Composition order
for one member: provider -> score cache -> long-document chunking; members are then chained by fallback. A
config with `on_failure="passthrough"` or a `circuit_breaker` is a chain even with one member, so a single
provider that is down fails open too.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rerank_core.base import Reranker
from rerank_core.config import CHAIN_WIDE, ConfigSource, RerankerConfig, changed_settings
from rerank_core.errors import ConfigurationError

# The cache, the chunker, the chain and the HTTP stack are imported when a config uses them, so a purely local
# reranker starts without them.
if TYPE_CHECKING:
    import httpx

    from rerank_core.cache import ScoreCache
    from rerank_core.fallback import Member


def load_reranker(
    spec: ConfigSource = None,
    *,
    api_key: str | None = None,
    base_url: str | list[str] | None = None,
    timeout: float | None = None,
    max_retries: int | None = None,
    max_documents_per_request: int | None = None,
    max_concurrency: int | None = None,
    headers: Mapping[str, str] | None = None,
    http_client: httpx.Client | None = None,
    async_http_client: httpx.AsyncClient | None = None,
    **overrides: Any,
) -> Reranker:
    """Build a reranker from a spec string, a dict, a `RerankerConfig`, a config file path, or (with no
    argument) the `RERANK_*` environment variables; with nothing configured, the local cross-encoder.

    Keyword arguments override the config: any `RerankerConfig` field (`cache=True`, `fallback=[...]`, ...);
    other keywords become provider `options`. `headers` and the httpx clients apply to the first member only and
    are never part of the config.
    """
    config = RerankerConfig.load(spec)
    named = {
        "api_key": api_key,
        "base_url": base_url,
        "timeout": timeout,
        "max_retries": max_retries,
        "max_documents_per_request": max_documents_per_request,
        "max_concurrency": max_concurrency,
    }
    settings: dict[str, Any] = {key: value for key, value in named.items() if value is not None}
    options = {key: value for key, value in overrides.items() if key not in RerankerConfig.model_fields}
    settings.update({key: value for key, value in overrides.items() if key in RerankerConfig.model_fields})
    if options:
        settings["options"] = {**config.options, **settings.get("options", {}), **options}
    config = config.with_overrides(settings)
    given = {"headers": headers, "http_client": http_client, "async_http_client": async_http_client}
    clients = {key: value for key, value in given.items() if value is not None}
    if clients and config.provider == "local":
        raise ConfigurationError(
            f"{', '.join(clients)} would be ignored: the local cross-encoder sends no HTTP request",
            provider="local",
            hint="Pass them only for a hosted provider",
        )
    return build_reranker(config, clients=clients)


def build_reranker(config: RerankerConfig, *, clients: Mapping[str, Any] | None = None) -> Reranker:
    """The reranker a validated config describes. A setting it would ignore is a `ConfigurationError`."""
    config.check_used()
    return _build(config, clients or {})


def is_chain(config: RerankerConfig) -> bool:
    """A fallback list, fail-open or a circuit breaker each need the chain around the member(s)."""
    return bool(config.fallback) or config.on_failure == "passthrough" or "circuit_breaker" in changed_settings(config)


def _open_cache(setting: bool | str, max_entries: int) -> ScoreCache | None:
    if setting is False:
        return None
    from rerank_core.cache import open_cache

    return open_cache(setting, max_entries=max_entries)


def _build(config: RerankerConfig, clients: Mapping[str, Any]) -> Reranker:
    cache = _open_cache(config.cache, config.cache_size)
    if not is_chain(config):
        return build_member(config, cache, clients)
    from rerank_core.fallback import FallbackReranker

    primary = config.model_copy(update={"fallback": []})
    members: list[Member] = [member_now_or_deferred(primary, cache, clients)]
    for member in config.fallback:
        # Chain-wide settings apply to every member that does not set its own; a member without its own cache
        # shares the chain's store (keys include provider and model, so members never mix scores).
        inherited = {key: getattr(config, key) for key in CHAIN_WIDE if key not in member.model_fields_set}
        member_cache = _open_cache(member.cache, member.cache_size) if "cache" in member.model_fields_set else cache
        members.append(member_now_or_deferred(member.with_overrides(inherited), member_cache, {}))
    breaker = config.circuit_breaker
    return FallbackReranker(
        members,
        on_failure=config.on_failure,
        failure_threshold=breaker.failure_threshold,
        cooldown=breaker.cooldown,
    )


def member_now_or_deferred(config: RerankerConfig, cache: ScoreCache | None, clients: Mapping[str, Any]) -> Member:
    """Build now, unless the API key is missing: then build on first use, so the chain still starts and the
    member is skipped (and retried later) until its key appears."""
    if config.fallback:
        return _build(config, clients)
    if key_is_missing(config):
        from rerank_core.fallback import Deferred

        label = f"{config.provider}:{config.model}" if config.model else config.provider
        return Deferred(lambda: build_member(config, cache, clients), label=label)
    return build_member(config, cache, clients)


def build_member(config: RerankerConfig, cache: ScoreCache | None, clients: Mapping[str, Any]) -> Reranker:
    """One provider, wrapped by the cache and the long-document chunker as configured."""
    base = build_provider(config, clients)
    reranker: Reranker = base
    if cache is not None:
        from rerank_core.cache import CachingReranker

        reranker = CachingReranker(base, cache, owns_cache=True)
    if config.long_documents == "chunk":
        from rerank_core.chunking import ChunkingReranker, local_token_budget

        reranker = ChunkingReranker(
            reranker,
            max_tokens_per_document=config.max_tokens_per_document,
            overlap=config.overlap,
            tokens=local_token_budget(base),
        )
    return reranker


def build_provider(config: RerankerConfig, clients: Mapping[str, Any]) -> Reranker:
    if config.provider == "local":
        from rerank_core.local.engines import local_cross_encoder

        return local_cross_encoder(config.model, **{"normalize": config.normalize, **config.options})

    from rerank_core.http import HTTPReranker

    return HTTPReranker(
        config.provider,
        model=config.model,
        api_key=resolve_api_key(config),
        base_url=config.base_url,
        timeout=config.timeout,
        max_retries=config.max_retries,
        max_documents_per_request=config.max_documents_per_request,
        max_concurrency=config.max_concurrency,
        max_connections=config.max_connections,
        max_retry_after=config.max_retry_after,
        max_response_bytes=config.max_response_bytes,
        options=config.options,
        normalize=config.normalize,
        **clients,
    )


def resolve_api_key(config: RerankerConfig) -> str | None:
    """A key passed in code, else the variable named by `api_key_env`; None lets the provider's own variable
    apply (HTTPReranker reads it and names it when it is missing)."""
    if config.api_key is not None:
        return config.api_key.get_secret_value()
    if config.api_key_env is None:
        return None
    value = os.environ.get(config.api_key_env)
    if not value:
        raise ConfigurationError(
            f"environment variable {config.api_key_env} is not set",
            provider=config.provider,
            hint=f"Set {config.api_key_env} to your {config.provider} API key (api_key_env names it in the config)",
        )
    return value


def key_is_missing(config: RerankerConfig) -> bool:
    if config.provider == "local" or config.api_key is not None:
        return False
    if config.api_key_env is not None:
        return not os.environ.get(config.api_key_env)
    from rerank_core.dialects import get_dialect

    dialect = get_dialect(config.provider)  # also rejects an unknown provider now, not on first use
    return dialect.requires_api_key and not (dialect.api_key_env and os.environ.get(dialect.api_key_env))
