"""What the framework wrappers share: building and rebuilding their reranker, validating each call's input, the
rerank call itself, what a response adds to the framework's documents, and serializing without secrets.

The wrappers keep only the mapping between their framework's types and these functions.
"""

from __future__ import annotations

import asyncio
import copy
import difflib
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Self, TypeAlias, TypeVar

from pydantic import BaseModel, PrivateAttr, SecretStr, field_serializer

from rerank_core._checks import setting_int
from rerank_core._secret_names import holds_secret as holds_secret
from rerank_core.base import Reranker, sigmoid
from rerank_core.config import RerankerConfig
from rerank_core.errors import ConfigurationError, InvalidInputError
from rerank_core.loader import load_reranker
from rerank_core.models import (
    DocumentInput,
    DroppedDocument,
    RerankResponse,
    RerankResult,
    to_documents,
    validate_documents,
    validate_query,
    validate_threshold,
    validate_top_n,
)

T = TypeVar("T")

RerankerLike: TypeAlias = Reranker | str | dict[str, Any]
"""A reranker object, a spec such as `"cohere:rerank-v3.5"`, or a `load_reranker` config dict."""

WINDOW_KEY = "rerank_window"
"""Metadata key of the chunk that produced a long document's score (`long_documents="chunk"`)."""


def resolve_reranker(
    reranker: RerankerLike, *, api_key: str | None = None, settings: Mapping[str, Any] | None = None
) -> Reranker:
    """Use a reranker object as is; build one from a spec string or config dict, with `api_key` and `settings`
    (any `load_reranker` keyword) overriding the config."""
    if isinstance(reranker, Reranker):
        check_settable(reranker, ["api_key"] * (api_key is not None) + list(settings or {}))
        return reranker
    return load_reranker(reranker, api_key=api_key, **(settings or {}))


def check_settable(reranker: RerankerLike, given: Sequence[str]) -> None:
    """A ready `Reranker` object is used as is: settings that would build it differently are an error."""
    if given and isinstance(reranker, Reranker):
        raise ConfigurationError(
            f"{', '.join(given)} cannot change a ready Reranker object, which is used as is",
            hint="Set them when you build the Reranker, or pass a spec string or config dict instead",
        )


def is_local(reranker: RerankerLike) -> bool:
    """True if `reranker` is (or its config's first member is) the local cross-encoder."""
    if isinstance(reranker, Reranker):
        return reranker.provider == "local"
    return RerankerConfig.load(reranker).provider == "local"


class LazyReranker:
    """The reranker a wrapper's settings describe: built on `get()`, once, and closed only if built here.

    Copies never carry the built reranker (its locks, pools and model cannot be copied or pickled): a deep copy
    or an unpickled copy builds its own on first use. A ready `Reranker` object is shared, never copied.
    """

    def __init__(
        self, reranker: RerankerLike, *, api_key: str | None = None, settings: Mapping[str, Any] | None = None
    ) -> None:
        self.reranker = reranker
        self.api_key = api_key
        self.settings = dict(settings or {})
        self._core: Reranker | None = None
        self._warm = False

    def describes(
        self, reranker: RerankerLike, *, api_key: str | None = None, settings: Mapping[str, Any] | None = None
    ) -> bool:
        """True if these settings are the ones this was made from (a wrapper rebuilds when they changed)."""
        same = reranker is self.reranker or (not isinstance(reranker, Reranker) and reranker == self.reranker)
        return same and api_key == self.api_key and dict(settings or {}) == self.settings

    def get(self) -> Reranker:
        if self._core is None:
            self._core = resolve_reranker(self.reranker, api_key=self.api_key, settings=self.settings)
        return self._core

    @property
    def built(self) -> Reranker | None:
        return self._core

    def warm_up(self) -> None:
        """Build the reranker and let it load its model or open its pool; later calls return at once."""
        if not self._warm:
            self.get().warm_up()
            self._warm = True

    async def awarm_up(self) -> None:
        """`warm_up` in a worker thread, because loading a model blocks; the event loop keeps running."""
        if not self._warm:
            await asyncio.to_thread(self.warm_up)

    def close(self) -> None:
        self._warm = False
        core, self._core = self._core, None
        if core is not None and core is not self.reranker:  # a reranker passed in belongs to the caller
            core.close()

    async def aclose(self) -> None:
        self._warm = False
        core, self._core = self._core, None
        if core is not None and core is not self.reranker:
            await core.aclose()

    def __deepcopy__(self, memo: dict[int, Any]) -> LazyReranker:
        shared = self.reranker if isinstance(self.reranker, Reranker) else copy.deepcopy(self.reranker, memo)
        return LazyReranker(shared, api_key=self.api_key, settings=copy.deepcopy(self.settings, memo))

    def __getstate__(self) -> dict[str, Any]:
        refuse_pickling(self.reranker)
        return {"reranker": self.reranker, "api_key": self.api_key, "settings": self.settings}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["reranker"], api_key=state["api_key"], settings=state["settings"])  # type: ignore[misc]


class WrapperLifecycle:
    """Warm-up, closing and the context managers, alike in every framework wrapper.

    A wrapper sets `_lazy` (None until it first builds) and defines `_current()`, the reranker for its current
    settings, rebuilt when they changed (`current_reranker`)."""

    if TYPE_CHECKING:
        _lazy: LazyReranker | None

        def _current(self) -> LazyReranker: ...

    def warm_up(self) -> None:
        """Load the local model or open the connection pool now, so the first query does not pay for it."""
        self._current().warm_up()

    async def awarm_up(self) -> None:
        """Async twin of `warm_up`: the loading runs in a worker thread, so the event loop keeps running."""
        await self._current().awarm_up()

    def close(self) -> None:
        """Release the connections or model of a reranker this wrapper built (one passed in belongs to the
        caller). The next call builds it again."""
        if self._lazy is not None:
            self._lazy.close()

    async def aclose(self) -> None:
        """Async twin of `close`."""
        if self._lazy is not None:
            await self._lazy.aclose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class ModelWrapper(WrapperLifecycle, BaseModel):
    """What the wrappers whose framework components are pydantic models (LangChain, LlamaIndex) share.

    A subclass declares the fields `reranker`, `api_key` and `score_threshold`, and calls `_build()` once pydantic
    has set them. The reranker is then built at once, shown and serialized without secrets, shared rather than
    copied by `copy.deepcopy`, refused by pickle when it is a ready object, and rebuilt when `reranker` or `api_key`
    is assigned."""

    if TYPE_CHECKING:
        reranker: RerankerLike
        api_key: SecretStr | None
        score_threshold: float | None

    _lazy: LazyReranker = PrivateAttr()

    def _build(self) -> None:
        # Built here, outside pydantic's validation, so a bad spec or a missing key raises rerank-core's own
        # ConfigurationError instead of a ValidationError wrapping it.
        check_threshold("score_threshold", self.score_threshold)
        self._lazy = LazyReranker(self.reranker, api_key=_secret(self.api_key))
        self._lazy.get()

    @field_serializer("reranker", check_fields=False)
    def _serialize_reranker(self, reranker: RerankerLike) -> str | dict[str, Any]:
        return public_config(reranker)

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        yield "reranker", public_config(self.reranker)  # a config dict's api_key stays out of repr
        yield from super().__repr_args__()

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Self:
        memo = {} if memo is None else memo
        share_reranker_object(self.reranker, memo)
        return super().__deepcopy__(memo)

    def __getstate__(self) -> dict[Any, Any]:
        refuse_pickling(self.reranker)  # instead of the framework silently dropping the field
        return super().__getstate__()

    def _core(self) -> Reranker:
        return self._current().get()

    def _current(self) -> LazyReranker:
        """The reranker for the current settings; rebuilt if `reranker` or `api_key` was assigned since."""
        self._lazy = current_reranker(self._lazy, self.reranker, api_key=_secret(self.api_key))
        return self._lazy


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def current_reranker(
    lazy: LazyReranker | None,
    reranker: RerankerLike,
    *,
    api_key: str | None = None,
    settings: Mapping[str, Any] | None = None,
) -> LazyReranker:
    """The wrappers' one rebuild rule: keep `lazy` while the wrapper's `reranker`, key and backend settings are
    the ones it was made from; when any was assigned since, build anew and close the one it replaces (a call still
    running on it finishes first)."""
    if lazy is not None and lazy.describes(reranker, api_key=api_key, settings=settings):
        return lazy
    if lazy is not None:
        lazy.close()
    return LazyReranker(reranker, api_key=api_key, settings=settings)


def share_reranker_object(reranker: RerankerLike, memo: dict[int, Any]) -> None:
    """Make a deep copy of a wrapper share a ready `Reranker` object (like a client) instead of copying it."""
    if isinstance(reranker, Reranker):
        memo[id(reranker)] = reranker


def refuse_pickling(reranker: RerankerLike) -> None:
    if isinstance(reranker, Reranker):
        raise TypeError(
            f"a wrapper around a ready {type(reranker).__name__} object cannot be pickled (it holds connections "
            "or a loaded model); build the wrapper from a spec string or config dict to pickle it"
        )


def check_top(name: str, value: object) -> int | None:
    """`top_n`/`top_k` as a wrapper is configured with it: None keeps everything, 0 keeps nothing."""
    return setting_int(name, value, minimum=0, allow_none=True)


def check_threshold(name: str, value: object) -> float | None:
    """`score_threshold` as a wrapper is configured with it: a finite number or None."""
    try:
        return validate_threshold(value, name)
    except InvalidInputError as error:
        raise ConfigurationError(error.message, hint=error.hint) from None


@dataclass(frozen=True)
class Request(Generic[T]):
    """One wrapper call, validated: the caller's own documents (`originals`, indexed by the results) and what the
    core scores (`documents`)."""

    query: str
    originals: Sequence[T]
    documents: list[DocumentInput]
    top_n: int | None
    score_threshold: float | None
    instruction: str | None = None
    """What relevance means for this call, for rerankers that follow instructions (None: the reranker's default)."""


def request(
    query: object,
    documents: object,
    top_n: object,
    score_threshold: object = None,
    *,
    to_core: Callable[[T], DocumentInput],
    kind: type[T] | tuple[type, ...] | None = None,
    name: str = "documents",
    expected: str = "a list of documents",
    top_name: str = "top_n",
    instruction: object = None,
) -> Request[T]:
    """The checks `Reranker.rerank` makes (query, documents, top_n >= 0, a finite score_threshold), made before a
    wrapper maps its framework's documents, so bad input is an `InvalidInputError` naming the parameter (`name`
    for the documents, `top_name` for the cut-off), never a raw error from the mapping. `kind` is what each
    document must be (checked before `to_core` reads it)."""
    checked_query = validate_query(query)
    originals: Sequence[T] = validate_documents(documents, name, expected)
    for position, item in enumerate(originals):
        if kind is not None and not isinstance(item, kind):
            raise InvalidInputError(
                f"{name}[{position}] has type {type(item).__name__}; expected {_names(kind)}",
                hint=f"Pass {expected}",
            )
    return Request(
        query=checked_query,
        originals=originals,
        documents=[to_core(item) for item in originals],
        top_n=validate_top_n(top_n, top_name, allow_zero=True),
        score_threshold=validate_threshold(score_threshold),
        instruction=validate_instruction(instruction),
    )


def validate_instruction(instruction: object) -> str | None:
    if instruction is not None and (not isinstance(instruction, str) or not instruction.strip()):
        raise InvalidInputError(
            f"instruction must be a non-empty string or None, not {instruction!r}",
            hint="Pass the task as text, e.g. 'Given a question, retrieve passages that answer it'",
        )
    return instruction


def _names(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(item.__name__ for item in kinds)


def rerank_request(core: Reranker, call: Request[Any]) -> RerankResponse:
    """`core.rerank` for a validated call, where `top_n=0` keeps nothing (without a call to the backend)."""
    if call.top_n == 0:
        return keep_nothing(core, call.documents)
    return core.rerank(
        call.query, call.documents, top_n=call.top_n, score_threshold=call.score_threshold, instruction=call.instruction
    )


async def arerank_request(core: Reranker, call: Request[Any]) -> RerankResponse:
    """Async twin of `rerank_request`."""
    if call.top_n == 0:
        return keep_nothing(core, call.documents)
    return await core.arerank(
        call.query, call.documents, top_n=call.top_n, score_threshold=call.score_threshold, instruction=call.instruction
    )


def keep_nothing(core: Reranker, documents: list[DocumentInput]) -> RerankResponse:
    to_documents(documents)  # the same checks as a call that scores them
    dropped = [DroppedDocument(index=index, reason="top_n") for index in range(len(documents))]
    return RerankResponse(results=[], model=core.model, provider=core.provider, dropped=dropped)


def rescored(response: RerankResponse, *, scale: bool, score_threshold: float | None) -> RerankResponse:
    """With `scale`, logit scores squashed into (0, 1) by a sigmoid; then `score_threshold` applied to the final
    scores. Other score kinds are already bounded and are never squashed. A sigmoid keeps the order, so `top_n`
    can be cut before this runs: the threshold removes the same documents either way."""
    score_threshold = validate_threshold(score_threshold)
    results = response.results
    kind = response.score_kind
    if scale and kind == "logit":
        results = [result.model_copy(update={"relevance_score": sigmoid(result.relevance_score)}) for result in results]
        kind = "probability"
    dropped = list(response.dropped)
    if score_threshold is not None and not response.passthrough:
        dropped += [
            DroppedDocument(index=result.index, reason="score_threshold")
            for result in results
            if result.relevance_score < score_threshold
        ]
        results = [result for result in results if result.relevance_score >= score_threshold]
    return response.model_copy(
        update={"results": results, "score_kind": kind, "dropped": sorted(dropped, key=lambda item: item.index)}
    )


def output_metadata(metadata: Mapping[Any, Any], result: RerankResult, **added: Any) -> dict[Any, Any]:
    """A returned document's metadata: a deep copy of the input's (so changing nested values never reaches the
    caller's documents), plus `added` and, for a chunked long document, the winning window.

    Values that cannot be copied (a lock, a connection, a client) are kept by reference rather than lost; a
    structure that refers to itself is copied with the same shape."""
    memo: dict[int, Any] = {}
    try:
        copied = {key: value if type(value) in _ATOMIC else _copy(value, memo) for key, value in metadata.items()}
    except RecursionError:  # a value nested deeper than Python recurses: that one is kept whole, by reference
        copied = {key: copy_value(value, {}) for key, value in metadata.items()}
    copied.update(added)
    if result.window is not None:
        copied[WINDOW_KEY] = result.window.model_dump()
    return copied


_ATOMIC = frozenset({str, int, float, bool, type(None)})


def copy_value(value: Any, memo: dict[int, Any]) -> Any:
    """A deep copy of `value`, sharing `memo` (as `copy.deepcopy` does) so shared and cyclic parts stay so.
    Whatever cannot be copied is kept by reference; nothing raises."""
    try:
        return _copy(value, memo)
    except RecursionError:  # nested deeper than Python recurses: the original, whole
        return value


def _copy(value: Any, memo: dict[int, Any]) -> Any:
    # JSON-like values (nearly all metadata) by hand: faster than copy.deepcopy's memo machinery. Atomic values
    # are checked inline, so only containers pay for a call and a memo lookup.
    known = memo.get(id(value), memo)
    if known is not memo:
        return known
    kind = type(value)
    if kind is dict:
        copied: dict[Any, Any] = {}
        memo[id(value)] = copied
        for key, item in value.items():
            copied[key] = item if type(item) in _ATOMIC else _copy(item, memo)
        return copied
    if kind is list:
        items: list[Any] = []
        memo[id(value)] = items
        items.extend([item if type(item) in _ATOMIC else _copy(item, memo) for item in value])
        return items
    before = len(memo)
    try:
        return copy.deepcopy(value, memo)
    except Exception:  # cannot be copied (a lock, a socket, a client): keep the caller's object
        for added in list(memo)[before:]:  # half-built copies must not stand in for objects seen again later
            del memo[added]
        return value


def response_info(response: RerankResponse) -> dict[str, Any]:
    """What a call reports besides the ranking, as plain JSON-ready values: provider, model, score kind, usage
    (only the counters the provider reported), request ids, and the dropped documents with their reasons."""
    return {
        "provider": response.provider,
        "model": response.model,
        "score_kind": response.score_kind,
        "usage": response.usage.model_dump(exclude_none=True),
        "request_ids": list(response.request_ids),
        "dropped": [dropped.model_dump() for dropped in response.dropped],
        "passthrough": response.passthrough,
    }


def public_config(reranker: RerankerLike) -> str | dict[str, Any]:
    """What a serialized pipeline stores: the spec, or the config without any `api_key` (nested ones too);
    for a reranker object, only its provider and model."""
    if isinstance(reranker, Reranker):
        return {"provider": reranker.provider, "model": reranker.model}
    if isinstance(reranker, str):
        return reranker
    cleaned: dict[str, Any] = _without_secrets(reranker)
    return cleaned


def _without_secrets(value: Any) -> Any:
    # Nested too: composite configs (fallback chains) hold one config per member.
    if isinstance(value, Mapping):
        return {key: _without_secrets(item) for key, item in value.items() if key != "api_key"}
    if isinstance(value, list | tuple):
        return [_without_secrets(item) for item in value]
    return value


# Names the frameworks' first-party rerankers use, and ours for the same thing.
FIRST_PARTY_NAMES = {"model": "reranker", "model_name": "reranker", "top_k": "top_n", "top_n": "top_k"}


def wrapper_arguments(given: Mapping[str, Any], accepted: Collection[str], wrapper: str) -> dict[str, Any]:
    """`given` with `model=` read as `reranker=`; any other name the wrapper does not take is a
    `ConfigurationError` naming the one it does (`top_k` where it says `top_n`, a typo), not a TypeError or a
    pydantic "extra inputs" message."""
    arguments = dict(given)
    if "model" in arguments and "model" not in accepted:
        if arguments.get("reranker") is not None:
            raise ConfigurationError(
                f"{wrapper} got both reranker= and model=", hint="model= is another name for reranker=: pass one"
            )
        arguments["reranker"] = arguments.pop("model")
    for name in arguments:
        if name in accepted:
            continue
        right = FIRST_PARTY_NAMES.get(name)
        if right not in accepted:
            close = difflib.get_close_matches(name, sorted(accepted), n=1)
            right = close[0] if close else None
        hint = f"Did you mean {right}=?" if right else f"It takes: {', '.join(sorted(accepted))}"
        raise ConfigurationError(f"{wrapper} has no parameter {name}=", hint=hint)
    return arguments
