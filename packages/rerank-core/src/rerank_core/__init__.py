"""rerank-core: one normalized reranking API over hosted providers and a local cross-encoder.

Names are imported on first use (PEP 562), so a purely local program never pays for the HTTP stack, the cache
or the chunker, and `import rerank_core` stays cheap for command-line tools and serverless cold starts.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    __version__: str

    from rerank_core.base import Reranker, Scores
    from rerank_core.cache import CachingReranker, MemoryScoreCache, ScoreCache, SQLiteScoreCache
    from rerank_core.chunking import ChunkingReranker
    from rerank_core.config import RerankerConfig
    from rerank_core.errors import (
        AuthenticationError,
        ConfigurationError,
        InvalidInputError,
        InvalidRequestError,
        ProviderError,
        RateLimitError,
        RerankConnectionError,
        RerankError,
        RerankTimeoutError,
        ResponseFormatError,
        UnsupportedInputError,
    )
    from rerank_core.fallback import Deferred, FallbackReranker
    from rerank_core.http import HTTPReranker
    from rerank_core.loader import load_reranker
    from rerank_core.local import LocalCrossEncoder, OnnxCrossEncoder, TorchCrossEncoder
    from rerank_core.models import (
        CacheStats,
        Document,
        DocumentInput,
        DroppedDocument,
        RerankResponse,
        RerankResult,
        ScoreKind,
        Usage,
        Window,
    )

_HOMES = {
    "base": ("Reranker", "Scores"),
    "cache": ("CachingReranker", "MemoryScoreCache", "SQLiteScoreCache", "ScoreCache"),
    "chunking": ("ChunkingReranker",),
    "config": ("RerankerConfig",),
    "errors": (
        "AuthenticationError",
        "ConfigurationError",
        "InvalidInputError",
        "InvalidRequestError",
        "ProviderError",
        "RateLimitError",
        "RerankConnectionError",
        "RerankError",
        "RerankTimeoutError",
        "ResponseFormatError",
        "UnsupportedInputError",
    ),
    "fallback": ("Deferred", "FallbackReranker"),
    "http": ("HTTPReranker",),
    "loader": ("load_reranker",),
    "local": ("LocalCrossEncoder", "OnnxCrossEncoder", "TorchCrossEncoder"),  # no engine imported until first use
    "models": (
        "CacheStats",
        "Document",
        "DocumentInput",
        "DroppedDocument",
        "RerankResponse",
        "RerankResult",
        "ScoreKind",
        "Usage",
        "Window",
    ),
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}

__all__ = [
    "AuthenticationError",
    "CacheStats",
    "CachingReranker",
    "ChunkingReranker",
    "ConfigurationError",
    "Deferred",
    "Document",
    "DocumentInput",
    "DroppedDocument",
    "FallbackReranker",
    "HTTPReranker",
    "InvalidInputError",
    "InvalidRequestError",
    "LocalCrossEncoder",
    "MemoryScoreCache",
    "OnnxCrossEncoder",
    "ProviderError",
    "RateLimitError",
    "RerankConnectionError",
    "RerankError",
    "RerankResponse",
    "RerankResult",
    "RerankTimeoutError",
    "Reranker",
    "RerankerConfig",
    "ResponseFormatError",
    "SQLiteScoreCache",
    "ScoreCache",
    "ScoreKind",
    "Scores",
    "TorchCrossEncoder",
    "UnsupportedInputError",
    "Usage",
    "Window",
    "load_reranker",
]


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from rerank_core._version import VERSION

        globals()["__version__"] = VERSION
        return VERSION
    module = _HOME_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'rerank_core' has no attribute {name!r}")
    value = getattr(import_module(f"rerank_core.{module}"), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__, "__version__"})
