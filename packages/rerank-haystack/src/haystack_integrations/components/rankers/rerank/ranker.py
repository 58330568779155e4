"""`RerankRanker`: any rerank-core reranker as a Haystack ranker component."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict
from haystack.utils import Secret, deserialize_secrets_inplace

from rerank_core import ConfigurationError, Reranker, RerankResponse
from rerank_core import Document as CoreDocument
from rerank_core.integration import RerankerLike, holds_secret, public_config, resolve_reranker


@component
class RerankRanker:
    """Rerank documents with any rerank-core backend (a hosted provider or the local cross-encoder).

    Returns copies of the input documents, best first, with the rerank score in `Document.score`.

    ```python
    ranker = RerankRanker(reranker="cohere:rerank-v3.5", api_key=Secret.from_env_var("COHERE_API_KEY"), top_k=5)
    ```
    """

    def __init__(
        self,
        reranker: RerankerLike,
        *,
        api_key: Secret | None = None,
        top_k: int | None = 10,
        score_threshold: float | None = None,
        meta_fields_to_embed: list[str] | None = None,
        embedding_separator: str = "\n",
    ) -> None:
        """
        :param reranker: A rerank-core `Reranker`, a spec such as `"cohere:rerank-v3.5"`, or a `load_reranker`
            config dict (without `api_key`: pass the key as `api_key`).
        :param api_key: The provider's API key. None reads the provider's own environment variable.
        :param top_k: How many documents to return; None returns all.
        :param score_threshold: Drop documents scoring below this.
        :param meta_fields_to_embed: Metadata fields scored together with the content, in this order.
        :param embedding_separator: Joins the metadata values and the content.
        """
        if holds_secret(reranker):
            raise ConfigurationError(
                "the reranker config dict holds a plaintext 'api_key', which would end up in the serialized pipeline",
                hint="Pass the key as api_key=Secret.from_env_var(...) instead",
            )
        self.reranker = reranker
        self.api_key = api_key
        self.top_k = top_k
        self.score_threshold = score_threshold
        self.meta_fields_to_embed = meta_fields_to_embed or []
        self.embedding_separator = embedding_separator
        self._core: Reranker | None = reranker if isinstance(reranker, Reranker) else None

    def warm_up(self) -> None:
        """Build the reranker from its spec; runs before every pipeline run, so it does the work only once."""
        if self._core is None:
            key = self.api_key.resolve_value() if self.api_key else None
            self._core = resolve_reranker(self.reranker, api_key=key)

    def close(self) -> None:
        """Release the connections of a reranker this component built (one passed in belongs to the caller)."""
        if self._core is not None and not isinstance(self.reranker, Reranker):
            self._core.close()
            self._core = None

    async def close_async(self) -> None:
        if self._core is not None and not isinstance(self.reranker, Reranker):
            await self._core.aclose()
            self._core = None

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(
            self,
            reranker=public_config(self.reranker),
            api_key=self.api_key,
            top_k=self.top_k,
            score_threshold=self.score_threshold,
            meta_fields_to_embed=self.meta_fields_to_embed,
            embedding_separator=self.embedding_separator,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RerankRanker:
        deserialize_secrets_inplace(data["init_parameters"], keys=["api_key"])
        return default_from_dict(cls, data)

    @component.output_types(documents=list[Document])
    def run(
        self, query: str, documents: list[Document], top_k: int | None = None, score_threshold: float | None = None
    ) -> dict[str, list[Document]]:
        """Rerank `documents` for `query`. `top_k` and `score_threshold` override the init values for this call."""
        core = self._warm_core()
        response = core.rerank(
            query,
            _to_core_documents(documents, self.meta_fields_to_embed, self.embedding_separator),
            top_n=self.top_k if top_k is None else top_k,
            score_threshold=self.score_threshold if score_threshold is None else score_threshold,
        )
        return {"documents": _from_results(response, documents)}

    @component.output_types(documents=list[Document])
    async def run_async(
        self, query: str, documents: list[Document], top_k: int | None = None, score_threshold: float | None = None
    ) -> dict[str, list[Document]]:
        """Async twin of `run`, natively async end to end."""
        core = self._warm_core()
        response = await core.arerank(
            query,
            _to_core_documents(documents, self.meta_fields_to_embed, self.embedding_separator),
            top_n=self.top_k if top_k is None else top_k,
            score_threshold=self.score_threshold if score_threshold is None else score_threshold,
        )
        return {"documents": _from_results(response, documents)}

    def _warm_core(self) -> Reranker:
        self.warm_up()  # direct run() calls may skip warm_up
        assert self._core is not None
        return self._core


def _to_core_documents(documents: Sequence[Document], meta_fields: list[str], separator: str) -> list[CoreDocument]:
    """Score the content prefixed by the chosen metadata values, as the Haystack rankers do."""
    return [
        CoreDocument(
            separator.join([str(doc.meta[key]) for key in meta_fields if doc.meta.get(key)] + [doc.content or ""]),
            id=doc.id,
            metadata=doc.meta,
        )
        for doc in documents
    ]


def _from_results(response: RerankResponse, documents: Sequence[Document]) -> list[Document]:
    """Copies of the caller's documents in ranked order; `replace` keeps `id` and every other field."""
    return [replace(documents[result.index], score=result.relevance_score) for result in response.results]
