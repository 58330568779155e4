"""rerank-haystack: rerank-core as a Haystack ranker, in the `haystack_integrations` namespace so YAML pipelines
load it without allow-listing."""

from haystack_integrations.components.rankers.rerank.ranker import RerankRanker

__all__ = ["RerankRanker"]
