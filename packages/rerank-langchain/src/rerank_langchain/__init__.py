"""rerank-langchain: rerank-core as a LangChain document compressor."""

from rerank_langchain.compressor import RerankCompressor

__all__ = ["RerankCompressor"]
