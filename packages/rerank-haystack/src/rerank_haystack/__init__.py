"""rerank-haystack: rerank-core as a Haystack ranker. The component lives in the `haystack_integrations`
namespace (`haystack_integrations.components.rankers.rerank`); this is a short alias."""

from haystack_integrations.components.rankers.rerank import RerankRanker

__all__ = ["RerankRanker"]
