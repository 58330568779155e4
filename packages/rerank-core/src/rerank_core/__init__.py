"""rerank-core: one normalized reranking API over hosted providers and a local cross-encoder."""

from importlib import metadata as _metadata

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
from rerank_core.local import LocalCrossEncoder  # imports torch only on first use
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
from rerank_core.onnx_engine import OnnxCrossEncoder  # imports onnxruntime only on first use

try:
    __version__ = _metadata.version("rerank-core")  # the one version, from VERSION via the package metadata
except _metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

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
    "UnsupportedInputError",
    "Usage",
    "Window",
    "load_reranker",
]
