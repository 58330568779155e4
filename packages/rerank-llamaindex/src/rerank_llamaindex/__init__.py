"""rerank-llamaindex: rerank-core as a LlamaIndex node postprocessor."""

from rerank_llamaindex.postprocessor import RerankPostprocessor

__all__ = ["RerankPostprocessor"]
