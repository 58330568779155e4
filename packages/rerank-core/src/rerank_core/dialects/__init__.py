"""Registry of wire dialects, one module per provider."""

from __future__ import annotations

from rerank_core.dialects.base import Dialect, ParsedResponse
from rerank_core.dialects.generic import GenericDialect
from rerank_core.errors import ConfigurationError

DIALECTS: dict[str, type[Dialect]] = {dialect.name: dialect for dialect in (GenericDialect,)}


def get_dialect(name: str) -> Dialect:
    try:
        return DIALECTS[name]()
    except KeyError:
        known = ", ".join(sorted(DIALECTS))
        raise ConfigurationError(f"unknown provider {name!r}", hint=f"Known providers: {known}, local") from None


__all__ = ["DIALECTS", "Dialect", "ParsedResponse", "get_dialect"]
