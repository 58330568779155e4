"""`RerankPostprocessor`: any rerank-core reranker as a LlamaIndex node postprocessor."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from llama_index.core.callbacks import CBEventType, EventPayload
from llama_index.core.instrumentation import get_dispatcher  # type: ignore[attr-defined]  # core's documented path
from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle
from pydantic import ConfigDict, Field, PrivateAttr, field_serializer

from rerank_core import Document as CoreDocument
from rerank_core import Reranker, RerankResponse
from rerank_core.integration import RerankerLike, public_config, resolve_reranker

dispatcher = get_dispatcher(__name__)


class RerankPostprocessor(BaseNodePostprocessor):
    """Rerank retrieved nodes with any rerank-core backend (a hosted provider or the local cross-encoder).

    Returns new `NodeWithScore` objects, best first, carrying the rerank score; the input nodes are not changed.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")  # a misspelled argument is an error

    reranker: RerankerLike = Field(
        description='A rerank-core Reranker, a spec such as "cohere:rerank-v3.5", or a load_reranker config dict.'
    )
    top_n: int | None = Field(default=2, ge=1, description="How many nodes to keep; None keeps all.")
    score_threshold: float | None = Field(default=None, description="Drop nodes scoring below this.")
    keep_retrieval_score: bool = Field(
        default=False, description='Keep the retriever\'s score in node.metadata["retrieval_score"] (on a copy).'
    )

    _core: Reranker = PrivateAttr()

    def model_post_init(self, context: Any, /) -> None:
        self._core = resolve_reranker(self.reranker)
        if isinstance(self.reranker, Mapping):
            self.reranker = public_config(self.reranker)  # the key lives only in the built reranker

    @classmethod
    def class_name(cls) -> str:
        return "RerankPostprocessor"

    @field_serializer("reranker")
    def _serialize_reranker(self, reranker: RerankerLike) -> str | dict[str, Any]:
        return public_config(reranker)

    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        query = _require_query(query_bundle)
        with self._observed(nodes, query) as reranked:
            response = self._core.rerank(
                query.query_str, _to_core_documents(nodes), top_n=self.top_n, score_threshold=self.score_threshold
            )
            reranked.extend(_from_results(response, nodes, self.keep_retrieval_score))
        return reranked

    @dispatcher.span
    async def _apostprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        query = _require_query(query_bundle)
        with self._observed(nodes, query) as reranked:
            response = await self._core.arerank(
                query.query_str, _to_core_documents(nodes), top_n=self.top_n, score_threshold=self.score_threshold
            )
            reranked.extend(_from_results(response, nodes, self.keep_retrieval_score))
        return reranked

    @contextmanager
    def _observed(self, nodes: list[NodeWithScore], query_bundle: QueryBundle) -> Iterator[list[NodeWithScore]]:
        """Emit the ReRank start/end events and the RERANKING callback around the block, balanced even on error.

        The block fills the yielded list with the reranked nodes.
        """
        model_name = self._core.model or self._core.provider
        dispatcher.event(
            ReRankStartEvent(query=query_bundle, nodes=nodes, top_n=self.top_n or len(nodes), model_name=model_name)
        )
        reranked: list[NodeWithScore] = []
        try:
            with self.callback_manager.event(
                CBEventType.RERANKING,
                payload={
                    EventPayload.NODES: nodes,
                    EventPayload.MODEL_NAME: model_name,
                    EventPayload.QUERY_STR: query_bundle.query_str,
                    EventPayload.TOP_K: self.top_n,
                },
            ) as event:
                yield reranked
                event.on_end(payload={EventPayload.NODES: reranked})
        finally:
            dispatcher.event(ReRankEndEvent(nodes=reranked))


def _require_query(query_bundle: QueryBundle | None) -> QueryBundle:
    if query_bundle is None:
        raise ValueError(
            "RerankPostprocessor needs a query: call postprocess_nodes(nodes, query_bundle=QueryBundle(...)) "
            "or postprocess_nodes(nodes, query_str=...)"
        )
    return query_bundle


def _to_core_documents(nodes: Sequence[NodeWithScore]) -> list[CoreDocument]:
    return [
        CoreDocument(
            item.node.get_content(metadata_mode=MetadataMode.EMBED), id=item.node.node_id, metadata=item.node.metadata
        )
        for item in nodes
    ]


def _from_results(
    response: RerankResponse, nodes: Sequence[NodeWithScore], keep_retrieval_score: bool
) -> list[NodeWithScore]:
    """New `NodeWithScore`s in ranked order; a node is copied only when its metadata gains the retrieval score."""
    reranked = []
    for result in response.results:
        original = nodes[result.index]
        node = original.node
        if keep_retrieval_score:
            node = node.model_copy(update={"metadata": {**node.metadata, "retrieval_score": original.score}})
        reranked.append(NodeWithScore(node=node, score=result.relevance_score))
    return reranked
