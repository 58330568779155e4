"""`RerankCompressor`: any rerank-core reranker as a LangChain `BaseDocumentCompressor`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.callbacks import Callbacks
from langchain_core.documents import BaseDocumentCompressor, Document
from langchain_core.runnables import RunnableConfig, RunnableLambda
from pydantic import ConfigDict, Field, PrivateAttr, field_serializer

from rerank_core import Document as CoreDocument
from rerank_core import Reranker, RerankResponse
from rerank_core.integration import RerankerLike, public_config, resolve_reranker


class RerankCompressor(BaseDocumentCompressor):
    """Rerank retrieved documents with any rerank-core backend (a hosted provider or the local cross-encoder).

    Returns copies of the caller's documents, best first, with the score in `metadata["relevance_score"]`.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    reranker: RerankerLike
    """A rerank-core `Reranker`, a spec such as `"cohere:rerank-v3.5"`, or a `load_reranker` config dict."""
    top_n: int | None = Field(default=3, ge=1)
    """How many documents to keep (LangChain's default of 3); None keeps all."""
    score_threshold: float | None = None
    """Drop documents scoring below this."""

    _core: Reranker = PrivateAttr()
    _runnable: RunnableLambda[dict[str, Any], list[Document]] = PrivateAttr()

    def model_post_init(self, context: Any, /) -> None:
        self._core = resolve_reranker(self.reranker)
        if isinstance(self.reranker, Mapping):
            self.reranker = public_config(self.reranker)  # the key lives only in the built reranker
        # A RunnableLambda makes each rerank a child run of whatever run passed us its callbacks.
        self._runnable = RunnableLambda(self._rerank, afunc=self._arerank, name="RerankCompressor")

    @field_serializer("reranker")
    def _serialize_reranker(self, reranker: RerankerLike) -> str | dict[str, Any]:
        return public_config(reranker)

    def compress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        return self._runnable.invoke({"query": query, "documents": documents}, self._config(callbacks))

    async def acompress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        return await self._runnable.ainvoke({"query": query, "documents": documents}, self._config(callbacks))

    def _config(self, callbacks: Callbacks | None) -> RunnableConfig:
        return {
            "callbacks": callbacks,
            "metadata": {"rerank_provider": self._core.provider, "rerank_model": self._core.model},
        }

    def _rerank(self, inputs: dict[str, Any]) -> list[Document]:
        documents = inputs["documents"]
        response = self._core.rerank(
            inputs["query"], _to_core_documents(documents), top_n=self.top_n, score_threshold=self.score_threshold
        )
        return _from_results(response, documents)

    async def _arerank(self, inputs: dict[str, Any]) -> list[Document]:
        documents = inputs["documents"]
        response = await self._core.arerank(
            inputs["query"], _to_core_documents(documents), top_n=self.top_n, score_threshold=self.score_threshold
        )
        return _from_results(response, documents)


def _to_core_documents(documents: Sequence[Document]) -> list[CoreDocument]:
    return [CoreDocument(doc.page_content, id=doc.id, metadata=doc.metadata) for doc in documents]


def _from_results(response: RerankResponse, documents: Sequence[Document]) -> list[Document]:
    """Copies of the caller's documents in ranked order; `model_copy` keeps `id` and every other field."""
    return [
        documents[result.index].model_copy(
            update={"metadata": {**documents[result.index].metadata, "relevance_score": result.relevance_score}}
        )
        for result in response.results
    ]
