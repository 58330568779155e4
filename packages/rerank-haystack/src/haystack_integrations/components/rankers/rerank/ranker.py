"""`RerankRanker`: any rerank-core reranker as a Haystack ranker component."""

# No `from __future__ import annotations` here: Haystack before 2.24 reads the socket types from the `run`
# annotations as they are, and string annotations make `connect` fail.

import logging
import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict
from haystack.utils import ComponentDevice, Secret, deserialize_secrets_inplace

from rerank_core import ConfigurationError, Reranker, RerankResponse
from rerank_core import Document as CoreDocument
from rerank_core.integration import (
    LazyReranker,
    Request,
    RerankerLike,
    WrapperLifecycle,
    arerank_request,
    check_settable,
    check_threshold,
    check_top,
    current_reranker,
    holds_secret,
    is_local,
    output_metadata,
    public_config,
    request,
    rerank_request,
    rescored,
    response_info,
    validate_instruction,
    wrapper_arguments,
)

logger = logging.getLogger(__name__)

ACCEPTED = (
    "reranker", "api_key", "top_k", "score_threshold", "scale_score", "query_prefix", "query_suffix",
    "document_prefix", "document_suffix", "meta_fields_to_embed", "embedding_separator", "batch_size", "device",
    "model_kwargs", "instruction",
)  # fmt: skip
"""The constructor's parameters, for the "did you mean" of a name it does not take."""


@component
class RerankRanker(WrapperLifecycle):
    """Rerank documents with any rerank-core backend (a hosted provider or the local cross-encoder).

    Returns copies of the input documents, best first, with the rerank score in `Document.score`, and a `meta`
    output with the call's provider, model, usage and request ids.

    ```python
    ranker = RerankRanker(reranker="cohere:rerank-v3.5", api_key=Secret.from_env_var("COHERE_API_KEY"), top_k=5)
    ```
    """

    def __init__(
        self,
        reranker: RerankerLike | None = None,
        *,
        model: RerankerLike | None = None,
        api_key: Secret | None = None,
        top_k: int | None = 10,
        score_threshold: float | None = None,
        scale_score: bool = True,
        query_prefix: str = "",
        query_suffix: str = "",
        document_prefix: str = "",
        document_suffix: str = "",
        meta_fields_to_embed: list[str] | None = None,
        embedding_separator: str = "\n",
        batch_size: int | None = None,
        device: ComponentDevice | None = None,
        model_kwargs: dict[str, Any] | None = None,
        instruction: str | None = None,
        **unexpected: Any,
    ) -> None:
        """
        :param reranker: A rerank-core `Reranker`, a spec such as `"cohere:rerank-v3.5"`, or a `load_reranker`
            config dict (without `api_key`: pass the key as `api_key`).
        :param model: Another name for `reranker`, as Haystack's own rankers call it.
        :param api_key: The provider's API key. None reads the provider's own environment variable.
        :param top_k: How many documents to return; 0 returns none, None returns all.
        :param score_threshold: Drop documents scoring below this (after `scale_score`).
        :param scale_score: Squash logit scores (the local cross-encoder's, for one) into (0, 1) with a sigmoid.
            Scores that are already probabilities are left as they are.
        :param query_prefix: Added before the query, e.g. an instruction some models expect.
        :param query_suffix: Added after the query.
        :param document_prefix: Added before each document's scored text (metadata fields and content).
        :param document_suffix: Added after each document's scored text.
        :param meta_fields_to_embed: Metadata fields scored together with the content, in this order.
        :param embedding_separator: Joins the metadata values and the content.
        :param batch_size: Pairs per forward pass for the local cross-encoder; documents per request for a
            hosted provider. None keeps the backend's default.
        :param device: Device of the local cross-encoder; None picks one (CUDA, then MPS, then CPU).
        :param model_kwargs: Further backend options, passed to `load_reranker`: for the local cross-encoder its
            settings (`dtype`, `max_length`, `quantize`, ...), for a hosted provider extra request fields.
        :param instruction: What relevance means here, for rerankers that follow instructions (LLM rerankers,
            vLLM, Fireworks); one that cannot raises instead of ignoring it. None keeps the reranker's default.
        """
        named = {"reranker": reranker, **({"model": model} if model is not None else {}), **unexpected}
        given = wrapper_arguments(named, ACCEPTED, "RerankRanker")
        reranker = given["reranker"]
        if reranker is None:
            raise ConfigurationError("RerankRanker needs reranker= (or model=)", hint='e.g. reranker="local"')
        if holds_secret(reranker) or holds_secret(model_kwargs):
            raise ConfigurationError(
                "the reranker config or model_kwargs holds a plaintext secret (an 'api_key', or a header named like "
                "a credential), which would end up in the serialized pipeline",
                hint="Pass the key as api_key=Secret.from_env_var(...) instead; a secret header has no safe "
                "serialized form, so keep it out of model_kwargs",
            )
        check_top("top_k", top_k)
        check_threshold("score_threshold", score_threshold)
        backend = {"batch_size": batch_size, "device": device, "model_kwargs": model_kwargs}
        check_settable(reranker, [name for name, value in backend.items() if value])
        if device is not None and not is_local(reranker):
            raise ConfigurationError(
                "device applies to the local cross-encoder only", hint='Use reranker="local..." or drop device'
            )
        self.reranker = reranker
        self.api_key = api_key
        self.top_k = top_k
        self.score_threshold = score_threshold
        self.scale_score = scale_score
        self.query_prefix = query_prefix
        self.query_suffix = query_suffix
        self.document_prefix = document_prefix
        self.document_suffix = document_suffix
        self.meta_fields_to_embed = meta_fields_to_embed or []
        self.embedding_separator = embedding_separator
        self.batch_size = batch_size
        self.device = device
        self.model_kwargs = model_kwargs or {}
        self.instruction = validate_instruction(instruction)
        self._lazy: LazyReranker | None = None

    async def warm_up_async(self) -> None:
        """`awarm_up` under Haystack's naming of async twins, which `Pipeline.run_async` prefers."""
        await self.awarm_up()

    async def close_async(self) -> None:
        """`aclose` under Haystack's naming of async twins (`run_async`, `warm_up_async`)."""
        await self.aclose()

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(
            self,
            reranker=public_config(self.reranker),
            api_key=self.api_key.to_dict() if self.api_key else None,
            top_k=self.top_k,
            score_threshold=self.score_threshold,
            scale_score=self.scale_score,
            query_prefix=self.query_prefix,
            query_suffix=self.query_suffix,
            document_prefix=self.document_prefix,
            document_suffix=self.document_suffix,
            meta_fields_to_embed=self.meta_fields_to_embed,
            embedding_separator=self.embedding_separator,
            batch_size=self.batch_size,
            device=self.device.to_dict() if self.device else None,
            model_kwargs=self.model_kwargs,
            instruction=self.instruction,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RerankRanker":
        params = data["init_parameters"]
        deserialize_secrets_inplace(params, keys=["api_key"])
        if isinstance(params.get("device"), dict):
            params["device"] = ComponentDevice.from_dict(params["device"])
        return default_from_dict(cls, data)

    @component.output_types(documents=list[Document], meta=dict[str, Any])
    def run(
        self,
        query: str,
        documents: list[Document],
        top_k: int | None = None,
        scale_score: bool | None = None,
        score_threshold: float | None = None,
        instruction: str | None = None,
    ) -> dict[str, Any]:
        """Rerank `documents` for `query`. `top_k`, `scale_score`, `score_threshold` and `instruction` override the
        init values for this call."""
        call = self._request(query, without_duplicate_ids(documents), top_k, score_threshold, instruction)
        response = rerank_request(self._core(), self._scored(call))
        return self._outputs(response, call, scale_score)

    @component.output_types(documents=list[Document], meta=dict[str, Any])
    async def run_async(
        self,
        query: str,
        documents: list[Document],
        top_k: int | None = None,
        scale_score: bool | None = None,
        score_threshold: float | None = None,
        instruction: str | None = None,
    ) -> dict[str, Any]:
        """Async twin of `run`, natively async end to end."""
        call = self._request(query, without_duplicate_ids(documents), top_k, score_threshold, instruction)
        response = await arerank_request(self._core(), self._scored(call))
        return self._outputs(response, call, scale_score)

    def _core(self) -> Reranker:
        return self._current().get()

    def _current(self) -> LazyReranker:
        """The reranker for the current settings, built on first use and rebuilt if they were changed since."""
        key = self.api_key.resolve_value() if self.api_key else None
        self._lazy = current_reranker(self._lazy, self.reranker, api_key=key, settings=self._backend_settings())
        return self._lazy

    def _backend_settings(self) -> dict[str, Any]:
        """Haystack's names mapped onto `load_reranker` keywords (none for a ready Reranker object)."""
        settings = dict(self.model_kwargs)
        if self.device is not None:
            settings["device"] = self.device.to_torch_str()
        if self.batch_size is not None:
            settings["batch_size" if is_local(self.reranker) else "max_documents_per_request"] = self.batch_size
        return settings

    def _request(
        self, query: object, documents: object, top_k: object, score_threshold: object, instruction: object = None
    ) -> Request[Document]:
        """The call's input, validated the way the core validates it (`top_k`, `score_threshold` and `instruction`
        default to the init values)."""
        return request(
            query,
            documents,
            self.top_k if top_k is None else top_k,
            self.score_threshold if score_threshold is None else score_threshold,
            to_core=self._to_core,
            kind=Document,
            expected="a list of Haystack Documents",
            top_name="top_k",
            instruction=self.instruction if instruction is None else instruction,
        )

    def _scored(self, call: Request[Document]) -> Request[Document]:
        """What the backend scores: the prefixed query, and no threshold (it applies after `scale_score`)."""
        return replace(call, query=f"{self.query_prefix}{call.query}{self.query_suffix}", score_threshold=None)

    def _to_core(self, doc: Document) -> CoreDocument:
        """Score the chosen metadata values (0 and False included), then the content, as the Haystack rankers do."""
        meta = _meta(doc)
        fields = [str(meta[key]) for key in self.meta_fields_to_embed if meta.get(key) is not None]
        text = self.embedding_separator.join([*fields, doc.content or ""])
        return CoreDocument(self.document_prefix + text + self.document_suffix, id=doc.id, metadata=meta)

    def _outputs(self, response: RerankResponse, call: Request[Document], scale_score: bool | None) -> dict[str, Any]:
        response = rescored(
            response,
            scale=self.scale_score if scale_score is None else scale_score,
            score_threshold=call.score_threshold,
        )
        return {"documents": _from_results(response, call.originals), "meta": response_info(response)}


def without_duplicate_ids(documents: object) -> object:
    """One document per id, as Haystack's own rankers do (deepset-ai/haystack#10508): the duplicate with the
    highest score stays (the first of equals), in the place its id first appeared. Anything but a list of
    Documents is left for the input check to refuse."""
    if not isinstance(documents, list) or not all(isinstance(doc, Document) for doc in documents):
        return documents
    kept: dict[str, Document] = {}
    for doc in documents:
        best = kept.get(doc.id)
        if best is None or _score_or_lowest(doc) > _score_or_lowest(best):
            kept[doc.id] = doc
    if len(kept) < len(documents):
        logger.debug("RerankRanker: %d documents with a duplicate id dropped", len(documents) - len(kept))
    return list(kept.values())


def _score_or_lowest(doc: Document) -> float:
    return doc.score if doc.score is not None else -math.inf


def _from_results(response: RerankResponse, documents: Sequence[Document]) -> list[Document]:
    """Copies of the caller's documents in ranked order; `replace` keeps `id` and every other field, and the meta
    is a deep copy."""
    return [
        replace(
            documents[result.index],
            score=result.relevance_score,
            meta=output_metadata(_meta(documents[result.index]), result),
        )
        for result in response.results
    ]


def _meta(doc: Document) -> dict[str, Any]:
    return doc.meta if isinstance(doc.meta, dict) else {}  # a Document built with meta=None has none
