"""`RerankPostprocessor`: any rerank-core reranker as a LlamaIndex node postprocessor."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from llama_index.core.callbacks import CBEventType, EventPayload
from llama_index.core.instrumentation import get_dispatcher  # type: ignore[attr-defined]  # core's documented path
from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle
from pydantic import ConfigDict, Field, SecretStr

from rerank_core import Document as CoreDocument
from rerank_core import RerankResponse
from rerank_core.errors import InvalidInputError
from rerank_core.integration import (
    WINDOW_KEY,
    ModelWrapper,
    Request,
    RerankerLike,
    arerank_request,
    output_metadata,
    request,
    rerank_request,
    response_info,
    wrapper_arguments,
)

dispatcher = get_dispatcher(__name__)


class RerankPostprocessor(ModelWrapper, BaseNodePostprocessor):
    """Rerank retrieved nodes with any rerank-core backend (a hosted provider or the local cross-encoder).

    Returns new `NodeWithScore` objects, best first, carrying the rerank score; the input nodes are not changed.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")  # a misspelled argument is an error

    reranker: RerankerLike = Field(
        repr=False,
        description='A rerank-core Reranker, a spec such as "cohere:rerank-v3.5", or a load_reranker config dict.',
    )
    api_key: SecretStr | None = Field(
        default=None,
        exclude=True,
        repr=False,
        description="The provider's API key; None reads the provider's environment variable. Never serialized.",
    )
    top_n: int | None = Field(default=2, ge=0, strict=True, description="Nodes to keep; 0 keeps none, None all.")
    score_threshold: float | None = Field(default=None, description="Drop nodes scoring below this.")
    instruction: str | None = Field(
        default=None,
        description="What relevance means here, for rerankers that follow instructions (LLM rerankers, vLLM, "
        "Fireworks); one that cannot raises instead of ignoring it. None: the reranker's default.",
    )
    keep_retrieval_score: bool = Field(
        default=False, description='Keep the retriever\'s score in node.metadata["retrieval_score"] (on a copy).'
    )

    if not TYPE_CHECKING:  # type checkers keep pydantic's typed signature

        def __init__(self, **data: Any) -> None:
            super().__init__(**wrapper_arguments(data, type(self).model_fields, "RerankPostprocessor"))
            self._build()

    @classmethod
    def class_name(cls) -> str:
        return "RerankPostprocessor"

    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        with self._observed(nodes, query_bundle) as call:
            checked = self._request(nodes, query_bundle)
            response = rerank_request(self._core(), checked)
            call.finish(response, _from_results(response, checked.originals, self.keep_retrieval_score))
        return call.nodes

    @dispatcher.span
    async def _apostprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        with self._observed(nodes, query_bundle) as call:
            checked = self._request(nodes, query_bundle)
            response = await arerank_request(self._core(), checked)
            call.finish(response, _from_results(response, checked.originals, self.keep_retrieval_score))
        return call.nodes

    def _request(self, nodes: object, query_bundle: QueryBundle | None) -> Request[NodeWithScore]:
        return request(
            _require_query(query_bundle),
            nodes,
            self.top_n,
            self.score_threshold,
            instruction=self.instruction,
            to_core=_to_core,
            kind=NodeWithScore,
            name="nodes",
            expected="a list of NodeWithScore",
        )

    @contextmanager
    def _observed(self, given: object, query_bundle: QueryBundle | None) -> Iterator[_Call]:
        """Emit the ReRank start/end events and the RERANKING callback around the block, balanced even on error
        or without a query. The end event's `tags` carry `response_info` (usage, request ids, ...)."""
        core = self._core()
        model_name = core.model or core.provider
        # Input that is not a list of nodes is refused inside the block; the events then show no nodes.
        valid = isinstance(given, list) and all(isinstance(item, NodeWithScore) for item in given)
        nodes: list[NodeWithScore] = given if valid else []  # type: ignore[assignment]
        top_n = len(nodes) if self.top_n is None else self.top_n
        dispatcher.event(ReRankStartEvent(query=query_bundle, nodes=nodes, top_n=top_n, model_name=model_name))
        call = _Call()
        try:
            with self.callback_manager.event(
                CBEventType.RERANKING,
                payload={
                    EventPayload.NODES: nodes,
                    EventPayload.MODEL_NAME: model_name,
                    EventPayload.QUERY_STR: query_bundle.query_str if query_bundle else None,
                    EventPayload.TOP_K: self.top_n,
                },
            ) as event:
                yield call
                event.on_end(payload={EventPayload.NODES: call.nodes})
        finally:
            dispatcher.event(ReRankEndEvent(nodes=call.nodes, tags=call.info))


@dataclass
class _Call:
    """What one rerank produced, for the end event."""

    nodes: list[NodeWithScore] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    def finish(self, response: RerankResponse, nodes: list[NodeWithScore]) -> None:
        self.nodes = nodes
        self.info = response_info(response)


def _require_query(query_bundle: QueryBundle | None) -> object:
    if query_bundle is None:
        raise InvalidInputError(
            "RerankPostprocessor needs a query",
            hint="Call postprocess_nodes(nodes, query_bundle=QueryBundle(...)) or "
            "postprocess_nodes(nodes, query_str=...)",
        )
    return query_bundle.query_str


def _to_core(item: NodeWithScore) -> CoreDocument:
    node = item.node
    return CoreDocument(node.get_content(metadata_mode=MetadataMode.EMBED), id=node.node_id, metadata=node.metadata)


def _from_results(
    response: RerankResponse, nodes: Sequence[NodeWithScore], keep_retrieval_score: bool
) -> list[NodeWithScore]:
    """New `NodeWithScore`s in ranked order, each around a copy of its node with deep-copied metadata."""
    reranked = []
    for result in response.results:
        original = nodes[result.index]
        node = original.node
        added = {"retrieval_score": original.score} if keep_retrieval_score else {}
        update: dict[str, Any] = {"metadata": output_metadata(node.metadata, result, **added)}
        if result.window is not None:  # where the score came from is for the caller, not for the LLM or embedder
            update["excluded_llm_metadata_keys"] = [*node.excluded_llm_metadata_keys, WINDOW_KEY]
            update["excluded_embed_metadata_keys"] = [*node.excluded_embed_metadata_keys, WINDOW_KEY]
        reranked.append(NodeWithScore(node=node.model_copy(update=update), score=result.relevance_score))
    return reranked
