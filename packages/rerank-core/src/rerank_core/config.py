"""`RerankerConfig`: the one schema behind every way of configuring a reranker.

The same settings arrive as a spec string (`"cohere:rerank-v3.5"`), a dict, a TOML/YAML/JSON file, or the
`RERANK_*` environment variables; all of them end up here, validated, so a typo fails early and the same config
works in code, on the command line and in every framework wrapper. API keys are never stored in plaintext: a
config names the environment variable to read (`api_key_env`); a key passed in code is held as a `SecretStr`
and left out of every dump.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from rerank_core import limits
from rerank_core.errors import ConfigurationError

CONFIG_SUFFIXES = (".toml", ".yaml", ".yml", ".json")
ENV_PROVIDER, ENV_MODEL, ENV_BASE_URL, ENV_CONFIG = (
    "RERANK_PROVIDER",
    "RERANK_MODEL",
    "RERANK_BASE_URL",
    "RERANK_CONFIG",
)


class CircuitBreakerConfig(BaseModel):
    """After `failure_threshold` consecutive failures a fallback member is skipped for `cooldown` seconds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    failure_threshold: int = Field(default=3, ge=1)
    cooldown: float = Field(default=30.0, ge=0)


class RerankerConfig(BaseModel):
    """Everything `load_reranker` needs. See docs/configuration.md for each field."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: str = "local"
    model: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    """Name of the environment variable holding the API key (default: the provider's own, e.g. COHERE_API_KEY)."""
    api_key: SecretStr | None = Field(default=None, exclude=True, repr=False)
    """Only for keys passed in code; never dumped. Prefer `api_key_env` in files."""
    timeout: float = Field(default=30.0, gt=0)
    max_retries: int = Field(default=2, ge=0)
    max_documents_per_request: int | None = Field(default=None, ge=1)
    max_concurrency: int = Field(default=4, ge=1)
    max_connections: int = Field(default=32, ge=1, le=limits.MAX_CONCURRENCY)
    """Requests in flight at once across every call of one reranker (its connection pool); more wait in line."""
    max_retry_after: float = Field(default=limits.DEFAULT_MAX_RETRY_AFTER, ge=0, le=limits.MAX_TIMEOUT)
    """A provider asking to wait longer than this (seconds) gets a RateLimitError saying when, not a sleep."""
    max_response_bytes: int = Field(default=limits.DEFAULT_MAX_RESPONSE_BYTES, ge=1)
    options: dict[str, Any] = Field(default_factory=dict)
    """Request options for a hosted provider; constructor settings (device, batch_size, ...) for `local`."""
    normalize: Literal["sigmoid"] | None = None
    fallback: list[RerankerConfig] = Field(default_factory=list)
    on_failure: Literal["raise", "passthrough"] = "raise"
    circuit_breaker: CircuitBreakerConfig = Field(default_factory=CircuitBreakerConfig)
    long_documents: Literal["truncate", "chunk"] = "truncate"
    max_tokens_per_document: int = Field(default=512, ge=8)
    chunk_overlap: int = Field(default=64, ge=0)
    cache: bool | str = False
    """False, True (in-memory LRU) or `"sqlite:///path/to/scores.db"`."""
    cache_size: int = Field(default=100_000, ge=1)
    """Entries kept by the in-memory cache."""

    @model_validator(mode="before")
    @classmethod
    def _split_spec(cls, data: Any) -> Any:
        # `provider: "cohere:rerank-v3.5"` is accepted as a spec string when no model is given separately.
        if isinstance(data, Mapping) and isinstance(data.get("provider"), str) and data.get("model") is None:
            provider, _, model = data["provider"].partition(":")
            if model:
                data = {**data, "provider": provider, "model": model}
        return data

    @field_validator("provider")
    @classmethod
    def _provider(cls, value: str) -> str:
        value = value.strip().lower()
        if not value:
            raise ValueError("provider must not be empty")
        return value

    @field_validator("cache")
    @classmethod
    def _cache(cls, value: bool | str) -> bool | str:
        if isinstance(value, str) and value != "memory" and not value.startswith("sqlite:///"):
            raise ValueError('cache must be true, false, "memory" or "sqlite:///path/to/file.db"')
        return value

    @model_validator(mode="after")
    def _overlap_fits(self) -> Self:
        if self.chunk_overlap >= self.max_tokens_per_document:
            raise ValueError("chunk_overlap must be smaller than max_tokens_per_document")
        return self

    def __repr_args__(self) -> Any:
        # Show what was set, not thirty defaults.
        return [(k, v) for k, v in super().__repr_args__() if k in self.model_fields_set and k != "api_key"]

    # -- every accepted form -------------------------------------------------------------------------------

    @classmethod
    def from_spec(cls, spec: str) -> RerankerConfig:
        """`"provider"` or `"provider:model"`; the model may itself contain ':' (a tag, a Windows path)."""
        provider, _, model = spec.strip().partition(":")
        if not provider:
            raise ConfigurationError(f"empty provider in spec {spec!r}", hint='Use "<provider>:<model>"')
        return cls.from_mapping({"provider": provider, "model": model or None})

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str = "config") -> RerankerConfig:
        try:
            return cls.model_validate(dict(data))
        except ValidationError as error:
            raise ConfigurationError(f"invalid {source}: {describe(error)}", hint=KEYS_HINT) from None

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> RerankerConfig:
        """A TOML, YAML or JSON file. The settings may sit at the top level or under a `rerank` table."""
        file = Path(path)
        if not file.is_file():
            raise ConfigurationError(f"config file {str(file)!r} not found")
        data = read_file(file)
        if isinstance(data, dict) and set(data) == {"rerank"} and isinstance(data["rerank"], dict):
            data = data["rerank"]
        if not isinstance(data, dict):
            raise ConfigurationError(f"config file {str(file)!r} must hold a table/mapping of settings")
        return cls.from_mapping(data, source=f"config file {str(file)!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RerankerConfig:
        """`RERANK_CONFIG` (a file), else `RERANK_PROVIDER` / `RERANK_MODEL` / `RERANK_BASE_URL`, else local."""
        env = os.environ if environ is None else environ
        if env.get(ENV_CONFIG):
            return cls.from_file(env[ENV_CONFIG])
        data: dict[str, Any] = {}
        if env.get(ENV_PROVIDER):
            data["provider"] = env[ENV_PROVIDER]
        if env.get(ENV_MODEL):
            data["model"] = env[ENV_MODEL]
        if env.get(ENV_BASE_URL):
            data["base_url"] = env[ENV_BASE_URL]
        return cls.from_mapping(data, source="RERANK_* environment variables")

    @classmethod
    def load(cls, source: ConfigSource = None) -> RerankerConfig:
        """Any accepted form -> a validated config."""
        if source is None:
            return cls.from_env()
        if isinstance(source, RerankerConfig):
            return source
        if isinstance(source, Mapping):
            return cls.from_mapping(source)
        if isinstance(source, os.PathLike) or (isinstance(source, str) and looks_like_file(source)):
            return cls.from_file(source)
        if isinstance(source, str):
            return cls.from_spec(source)
        raise ConfigurationError(
            f"cannot build a reranker config from {type(source).__name__}",
            hint="Pass a spec string, a dict, a RerankerConfig or a path to a .toml/.yaml/.json file",
        )

    def with_overrides(self, overrides: Mapping[str, Any]) -> RerankerConfig:
        """A copy with `overrides` applied and validated again."""
        if not overrides:
            return self
        # Field values, not a dump: a dump would drop the in-code API keys of this config and its fallbacks.
        data = {name: getattr(self, name) for name in self.model_fields_set}
        return RerankerConfig.from_mapping({**data, **overrides})


ConfigSource = RerankerConfig | Mapping[str, Any] | str | os.PathLike[str] | None
KEYS_HINT = "Known keys: " + ", ".join(RerankerConfig.model_fields) + " (see docs/configuration.md)"


def looks_like_file(spec: str) -> bool:
    return spec.lower().endswith(CONFIG_SUFFIXES)


def read_file(file: Path) -> Any:
    text = file.read_text(encoding="utf-8")
    suffix = file.suffix.lower()
    try:
        if suffix == ".toml":
            return tomllib.loads(text)
        if suffix == ".json":
            return json.loads(text)
        try:
            import yaml
        except ImportError:
            raise ConfigurationError(
                "reading a YAML config needs PyYAML", hint='pip install "rerank-core[yaml]"'
            ) from None
        return yaml.safe_load(text)
    except ConfigurationError:
        raise
    except Exception as error:  # each parser has its own error type; all mean "not valid <format>"
        raise ConfigurationError(f"config file {str(file)!r} is not valid {suffix[1:].upper()}: {error}") from None


def describe(error: ValidationError) -> str:
    """One line per problem, with the key path: `fallback.0.tiemout: unknown key`."""
    problems = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "config"
        message = "unknown key" if item["type"] == "extra_forbidden" else item["msg"]
        problems.append(f"{where}: {message}")
    return "; ".join(problems)
