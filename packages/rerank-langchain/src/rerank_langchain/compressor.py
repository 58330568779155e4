"""`RerankCompressor`: any rerank-core reranker as a LangChain `BaseDocumentCompressor`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import Callbacks, adispatch_custom_event, dispatch_custom_event
from langchain_core.documents import BaseDocumentCompressor, Document
from langchain_core.runnables import RunnableConfig, RunnableLambda
from pydantic import ConfigDict, Field, SecretStr

from rerank_core import Document as CoreDocument
from rerank_core import RerankResponse
from rerank_core.integration import (
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

RESPONSE_EVENT = "rerank_response"
"""The custom callback event each rerank dispatches with `response_info` (usage, request ids, ...)."""


class RerankCompressor(ModelWrapper, BaseDocumentCompressor):
    """Rerank retrieved documents with any rerank-core backend (a hosted provider or the local cross-encoder).

    Returns copies of the caller's documents, best first, with the score in `metadata["relevance_score"]`.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    reranker: RerankerLike = Field(repr=False)
    """A rerank-core `Reranker`, a spec such as `"cohere:rerank-v3.5"`, or a `load_reranker` config dict."""
    api_key: SecretStr | None = Field(default=None, exclude=True, repr=False)
    """The provider's API key; None reads the provider's environment variable. Never shown or serialized."""
    top_n: int | None = Field(default=3, ge=0, strict=True)
    """How many documents to keep (LangChain's default of 3); 0 keeps none, None keeps all."""
    score_threshold: float | None = None
    """Drop documents scoring below this."""
    instruction: str | None = None
    """What relevance means here, for rerankers that follow instructions (LLM rerankers, vLLM, Fireworks); one that
    cannot follow it raises instead of ignoring it. None: the reranker's default."""

    if not TYPE_CHECKING:  # type checkers keep pydantic's typed signature

        def __init__(self, **data: Any) -> None:
            super().__init__(**wrapper_arguments(data, type(self).model_fields, "RerankCompressor"))
            self._build()

    def rerank(
        self, documents: Sequence[str | Document | dict[str, Any]], query: str, *, top_n: int | None = -1
    ) -> list[dict[str, Any]]:
        """`[{"index": ..., "relevance_score": ...}]`, best first, as LangChain's `CohereRerank.rerank` returns.

        `top_n=-1` uses the compressor's `top_n`; None returns every document."""
        response = rerank_request(self._core(), self._request(query, documents, self._top_n(top_n), ANY_DOCUMENT))
        return [{"index": result.index, "relevance_score": result.relevance_score} for result in response.results]

    async def arerank(
        self, documents: Sequence[str | Document | dict[str, Any]], query: str, *, top_n: int | None = -1
    ) -> list[dict[str, Any]]:
        """Async twin of `rerank`."""
        response = await arerank_request(
            self._core(), self._request(query, documents, self._top_n(top_n), ANY_DOCUMENT)
        )
        return [{"index": result.index, "relevance_score": result.relevance_score} for result in response.results]

    def compress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        return self._runnable().invoke({"query": query, "documents": documents}, self._config(callbacks))

    async def acompress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        return await self._runnable().ainvoke({"query": query, "documents": documents}, self._config(callbacks))

    def _top_n(self, top_n: int | None) -> int | None:
        return self.top_n if top_n == -1 else top_n

    def _runnable(self) -> RunnableLambda[dict[str, Any], list[Document]]:
        # A RunnableLambda makes each rerank a child run of whatever run passed us its callbacks.
        return RunnableLambda(self._rerank, afunc=self._arerank, name="RerankCompressor")

    def _config(self, callbacks: Callbacks | None) -> RunnableConfig:
        core = self._core()
        return {"callbacks": callbacks, "metadata": {"rerank_provider": core.provider, "rerank_model": core.model}}

    def _request(self, query: object, documents: object, top_n: object, kind: Any) -> Request[Any]:
        return request(
            query,
            documents,
            top_n,
            self.score_threshold,
            instruction=self.instruction,
            to_core=_to_core,
            kind=kind,
            expected="a list of LangChain Documents" if kind is Document else "a list of str, Document or dict",
        )

    def _rerank(self, inputs: dict[str, Any], config: RunnableConfig) -> list[Document]:
        call = self._request(inputs["query"], inputs["documents"], self.top_n, Document)
        response = rerank_request(self._core(), call)
        dispatch_custom_event(RESPONSE_EVENT, response_info(response), config=config)
        return _from_results(response, call.originals)

    async def _arerank(self, inputs: dict[str, Any], config: RunnableConfig) -> list[Document]:
        call = self._request(inputs["query"], inputs["documents"], self.top_n, Document)
        response = await arerank_request(self._core(), call)
        await adispatch_custom_event(RESPONSE_EVENT, response_info(response), config=config)
        return _from_results(response, call.originals)


ANY_DOCUMENT = (str, Document, dict)
"""What `rerank()` takes, as LangChain's `CohereRerank.rerank` does."""


def _to_core(doc: str | Document | dict[str, Any]) -> Any:
    if isinstance(doc, Document):
        return CoreDocument(doc.page_content, id=doc.id, metadata=doc.metadata)
    return doc


def _from_results(response: RerankResponse, documents: Sequence[Document]) -> list[Document]:
    """Copies of the caller's documents in ranked order; `model_copy` keeps `id` and every other field."""
    return [
        documents[result.index].model_copy(
            update={
                "metadata": output_metadata(
                    documents[result.index].metadata, result, relevance_score=result.relevance_score
                )
            }
        )
        for result in response.results
    ]
