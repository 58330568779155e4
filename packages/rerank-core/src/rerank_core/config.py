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

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StrictBool,
    ValidationError,
    field_validator,
    model_validator,
)

from rerank_core.errors import ConfigurationError
from rerank_core.limits import (
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_MAX_RETRY_AFTER,
    MAX_CONCURRENCY,
    MAX_COOLDOWN,
    MAX_RETRIES,
    MAX_TIMEOUT,
)

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

    failure_threshold: int = Field(default=3, ge=1, le=1_000_000)
    cooldown: float = Field(default=30.0, ge=0, le=MAX_COOLDOWN, allow_inf_nan=False)

    @field_validator("failure_threshold", "cooldown", mode="before")
    @classmethod
    def _no_bool(cls, value: Any) -> Any:
        return _not_bool(value)


def _not_bool(value: Any) -> Any:
    # pydantic reads True as 1 in lax mode; `timeout=True` is a mistake, never a setting.
    if isinstance(value, bool):
        raise ValueError("must be a number, not a boolean")
    return value


def replica_urls(text: str) -> str | list[str]:
    """A base URL as written in an environment variable or on the command line: one URL, or the replicas of one
    deployment separated by commas (or spaces)."""
    urls = text.replace(",", " ").split()
    return urls[0] if len(urls) == 1 else urls


def default_overlap(max_tokens_per_document: int) -> int:
    """The overlap used when none is set: an eighth of the budget (64 tokens for the default 512)."""
    return max_tokens_per_document // 8


class RerankerConfig(BaseModel):
    """Everything `load_reranker` needs. See docs/configuration.md for each field."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: str = "local"
    model: str | None = None
    base_url: str | list[str] | None = None
    """The server's address; a list for the replicas of one deployment (each request goes to the least busy)."""
    api_key_env: str | None = None
    """Name of the environment variable holding the API key (default: the provider's own, e.g. COHERE_API_KEY)."""
    api_key: SecretStr | None = Field(default=None, exclude=True, repr=False)
    """Only for keys passed in code; never dumped. Prefer `api_key_env` in files."""
    timeout: float = Field(default=30.0, gt=0, le=MAX_TIMEOUT, allow_inf_nan=False)
    max_retries: int = Field(default=2, ge=0, le=MAX_RETRIES)
    max_documents_per_request: int | None = Field(default=None, ge=1)
    max_concurrency: int = Field(default=4, ge=1, le=MAX_CONCURRENCY)
    max_connections: int = Field(default=32, ge=1, le=MAX_CONCURRENCY)
    """Requests in flight at once across every call of one reranker (its connection pool); more wait in line."""
    max_retry_after: float = Field(default=DEFAULT_MAX_RETRY_AFTER, ge=0, le=MAX_TIMEOUT)
    """A provider asking to wait longer than this (seconds) gets a RateLimitError saying when, not a sleep."""
    max_response_bytes: int = Field(default=DEFAULT_MAX_RESPONSE_BYTES, ge=1)
    options: dict[str, Any] = Field(default_factory=dict)
    """Request options for a hosted provider; constructor settings (device, batch_size, ...) for `local`."""
    normalize: Literal["sigmoid"] | None = None
    fallback: list[RerankerConfig] = Field(default_factory=list)
    on_failure: Literal["raise", "passthrough"] = "raise"
    circuit_breaker: CircuitBreakerConfig = Field(default_factory=CircuitBreakerConfig)
    long_documents: Literal["truncate", "chunk"] = "truncate"
    max_tokens_per_document: int = Field(default=512, ge=8, le=1_000_000)
    chunk_overlap: int | None = Field(default=None, ge=0)
    """None: `default_overlap(max_tokens_per_document)`."""
    cache: StrictBool | str = False
    """False, True (in-memory LRU) or `"sqlite:///path/to/scores.db"`."""
    cache_size: int = Field(default=100_000, ge=1, le=1_000_000_000)
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

    @field_validator(
        "timeout",
        "max_retries",
        "max_documents_per_request",
        "max_concurrency",
        "max_tokens_per_document",
        "chunk_overlap",
        "cache_size",
        mode="before",
    )
    @classmethod
    def _numbers_not_bool(cls, value: Any) -> Any:
        return _not_bool(value)

    @field_validator("cache")
    @classmethod
    def _cache(cls, value: bool | str) -> bool | str:
        if isinstance(value, str) and value != "memory":
            if not value.startswith("sqlite:///"):
                raise ValueError('cache must be true, false, "memory" or "sqlite:///path/to/file.db"')
            if not value.removeprefix("sqlite:///").strip():
                raise ValueError('cache "sqlite:///" names no file: use "sqlite:///path/to/file.db"')
        return value

    @model_validator(mode="after")
    def _overlap_fits(self) -> Self:
        if self.chunk_overlap is not None and self.chunk_overlap >= self.max_tokens_per_document:
            raise ValueError(
                f"chunk_overlap ({self.chunk_overlap}) must be smaller than max_tokens_per_document "
                f"({self.max_tokens_per_document})"
            )
        return self

    @property
    def overlap(self) -> int:
        """The chunk overlap in effect: the one set, else an eighth of the budget."""
        if self.chunk_overlap is not None:
            return self.chunk_overlap
        return default_overlap(self.max_tokens_per_document)

    def check_used(self) -> None:
        """Raise a `ConfigurationError` for any setting this config (a whole chain) would ignore.

        Not part of field validation: a fallback member inherits chain-wide settings, so whether a member's
        `chunk_overlap` is used depends on the chain around it. `load_reranker` calls this before building.
        """
        problems = unused_settings(self, member=False, inherited={})
        for position, member in enumerate(self.fallback):
            inherited = {key: getattr(self, key) for key in CHAIN_WIDE if key not in member.model_fields_set}
            problems += [f"fallback.{position}.{p}" for p in unused_settings(member, member=True, inherited=inherited)]
        if problems:
            raise ConfigurationError(
                "settings that would be ignored: " + "; ".join(problems),
                hint="Remove them, or set what they depend on (see docs/configuration.md, 'Settings that depend "
                "on others')",
            )

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
            problems = describe(error)
        # Raised outside the except block, so the ValidationError (which quotes input values, e.g. a key under a
        # misspelt name) is not kept as __context__ and never reaches a traceback.
        raise ConfigurationError(f"invalid {source}: {problems}", hint=KEYS_HINT)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> RerankerConfig:
        """A TOML, YAML or JSON file: the settings of its `rerank` table if it has one (then every other key is
        the app's own and left alone), else of `tool.rerank` (pyproject.toml), else the whole file."""
        file = Path(path)
        if not file.is_file():
            raise ConfigurationError(f"config file {str(file)!r} not found")
        data = settings_in(read_file(file))
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
            data["base_url"] = replica_urls(env[ENV_BASE_URL])
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
CHAIN_WIDE = ("long_documents", "max_tokens_per_document", "chunk_overlap")
"""Settings a fallback member takes from the chain unless it sets them itself."""
LOCAL_KEYS = frozenset(
    {
        "provider",
        "model",
        "options",
        "normalize",
        "fallback",
        "on_failure",
        "circuit_breaker",
        "long_documents",
        "max_tokens_per_document",
        "chunk_overlap",
        "cache",
        "cache_size",
    }
)
"""The settings a `local` member uses. Every other key (base_url, keys, timeout, retries, batching, connection and
response limits: the HTTP client's settings) would be ignored by the local cross-encoder, so it is an error. An
allow-list, so a new HTTP setting is covered without being listed here."""
CHAIN_ONLY = ("on_failure", "circuit_breaker")
"""Settings of the chain as a whole: in a fallback member they would be ignored (or, for passthrough, would hide
that member's failure from the chain)."""


def unused_settings(config: RerankerConfig, *, member: bool, inherited: Mapping[str, Any]) -> list[str]:
    """`"key: why"` for every key of `config` (one member, not its own fallback list) set to something other than
    its default that the built reranker would not use. Keys at their default pass, so a full `model_dump()` of a
    valid config loads back."""
    given = changed_settings(config)
    problems: list[str] = []
    if member:
        problems += [
            f"{key}: applies to the whole chain; set it at the top level" for key in CHAIN_ONLY if key in given
        ]
    if config.provider == "local":
        problems += [f"{key}: the local cross-encoder sends no HTTP request" for key in sorted(given - LOCAL_KEYS)]
    if "api_key" in given and "api_key_env" in given:
        problems.append("api_key_env: api_key is given too, and wins")
    long_documents = inherited.get("long_documents", config.long_documents)
    if long_documents != "chunk":
        problems += [
            f'{key}: used only with long_documents="chunk"'
            for key in ("max_tokens_per_document", "chunk_overlap")
            if key in given
        ]
    if "cache_size" in given and config.cache not in (True, "memory"):
        problems.append('cache_size: sizes the in-memory cache only (cache=true or "memory")')
    return problems


def changed_settings(config: RerankerConfig) -> set[str]:
    """The keys set explicitly to a value other than their default."""
    fields = RerankerConfig.model_fields
    return {
        key
        for key in config.model_fields_set
        if getattr(config, key) != fields[key].get_default(call_default_factory=True)
    }


KEYS_HINT = "Known keys: " + ", ".join(RerankerConfig.model_fields) + " (see docs/configuration.md)"


def looks_like_file(spec: str) -> bool:
    return spec.lower().endswith(CONFIG_SUFFIXES)


def settings_in(data: Any) -> Any:
    """The part of a parsed config file that holds the settings (see `RerankerConfig.from_file`)."""
    if not isinstance(data, dict):
        return data
    if "rerank" in data:
        return data["rerank"]
    tool = data.get("tool")
    if isinstance(tool, dict) and "rerank" in tool:
        return tool["rerank"]
    return data


def read_file(file: Path) -> Any:
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ConfigurationError(
            f"config file {str(file)!r} is not UTF-8 text (byte {error.start} cannot be decoded)",
            hint="Save the file as UTF-8",
        ) from None
    except OSError as error:
        raise ConfigurationError(f"config file {str(file)!r} cannot be read: {error.strerror}") from None
    suffix = file.suffix.lower()
    if suffix not in (".toml", ".json"):
        try:
            import yaml
        except ImportError:
            raise ConfigurationError(
                "reading a YAML config needs PyYAML", hint='pip install "rerank-core[yaml]"'
            ) from None
    try:
        if suffix == ".toml":
            return tomllib.loads(text)
        if suffix == ".json":
            return json.loads(text)
        return yaml.safe_load(text)
    except Exception as error:  # each parser has its own error type; all mean "not valid <format>"
        where = parse_error_position(error)
    # Outside the except block: parser errors may quote the offending line, which may hold a key.
    raise ConfigurationError(f"config file {str(file)!r} is not valid {suffix[1:].upper()}{where}")


def parse_error_position(error: Exception) -> str:
    """Where a parser failed, without the text around it (YAML quotes the line, which may hold a secret)."""
    if isinstance(error, json.JSONDecodeError):
        return f": {error.msg} at line {error.lineno}, column {error.colno}"
    if isinstance(error, tomllib.TOMLDecodeError):
        return f": {error}"  # "Invalid value (at line 3, column 10)": never the text itself
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or "syntax error"
    if mark is not None:
        return f": {problem} at line {mark.line + 1}, column {mark.column + 1}"
    return f": {problem}"


def describe(error: ValidationError) -> str:
    """One line per problem, with the key path: `fallback.0.tiemout: unknown key`."""
    problems = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "config"
        message = "unknown key" if item["type"] == "extra_forbidden" else item["msg"]
        problems.append(f"{where}: {message}")
    return "; ".join(problems)
