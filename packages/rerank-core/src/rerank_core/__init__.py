"""rerank-core: one normalized reranking API over hosted providers and a local cross-encoder."""

from rerank_core.base import Reranker, Scores
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
)
from rerank_core.loader import load_reranker
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

__all__ = [
    "AuthenticationError",
    "CacheStats",
    "ConfigurationError",
    "Document",
    "DocumentInput",
    "DroppedDocument",
    "InvalidInputError",
    "InvalidRequestError",
    "ProviderError",
    "RateLimitError",
    "RerankConnectionError",
    "RerankError",
    "RerankResponse",
    "RerankResult",
    "RerankTimeoutError",
    "Reranker",
    "ResponseFormatError",
    "ScoreKind",
    "Scores",
    "Usage",
    "Window",
    "load_reranker",
]
