"""The one tolerant response parser every dialect shares.

Tolerant about shape (list under `results`, `data` or `rankings`, or a bare list; score under
`relevance_score`, `score` or `logit`), strict about content: indices in range and unique, scores finite.
A violation raises `ResponseFormatError`; nothing is silently dropped. Echoed documents are ignored, because
the client re-attaches the caller's own input by index.
"""

from __future__ import annotations

import math
import operator
from typing import Any

from rerank_core.errors import ResponseFormatError
from rerank_core.http.error_mapping import error_message

LIST_KEYS = ("results", "data", "rankings")
SCORE_KEYS = ("relevance_score", "score", "logit")
MAX_MESSAGE = 500
"""A provider's message longer than this is left out of the error, not cut (a cut could split an echoed key
that the scrubber would then no longer recognise)."""


def find_list(payload: Any, provider: str) -> list[Any]:
    if isinstance(payload, list):
        return payload
    if isinstance(payload, dict):
        for key in LIST_KEYS:
            if isinstance(payload.get(key), list):
                return list(payload[key])
    message = error_message(payload)
    if message is not None:
        said = repr(message) if len(message) <= MAX_MESSAGE else f"a message of {len(message)} characters"
        raise ResponseFormatError(
            f"the provider answered with an error instead of a result list: {said}",
            provider=provider,
            hint="The request was accepted but failed on the provider's side; retry later, or check the model and "
            "options",
        )
    raise ResponseFormatError(
        f"response has no result list (looked for {', '.join(LIST_KEYS)} or a bare list)",
        provider=provider,
        hint="Check base_url points at the provider's rerank endpoint",
    )


def read_score(item: dict[str, Any], provider: str, position: int) -> float:
    for key in SCORE_KEYS:
        if key in item:
            value = item[key]
            if isinstance(value, list) and len(value) == 1:  # early vLLM /score wrapped scores in a list
                value = value[0]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ResponseFormatError(f"result {position} has a non-numeric score {value!r}", provider=provider)
            score = float(value)
            if not math.isfinite(score):
                raise ResponseFormatError(f"result {position} has a non-finite score {value!r}", provider=provider)
            return score
    raise ResponseFormatError(f"result {position} has no score (looked for {', '.join(SCORE_KEYS)})", provider=provider)


def parse_results(payload: Any, *, n_documents: int, provider: str) -> list[tuple[int, float]]:
    """Validated (index, score) pairs, in the order the provider sent them."""
    items = find_list(payload, provider)
    common = _common_shape(items, n_documents)
    if common is not None:
        return common
    seen: set[int] = set()
    pairs: list[tuple[int, float]] = []
    for position, item in enumerate(items):
        if not isinstance(item, dict):
            raise ResponseFormatError(f"result {position} is not an object", provider=provider)
        index = item.get("index")
        if isinstance(index, bool) or not isinstance(index, int):
            raise ResponseFormatError(f"result {position} has no integer index", provider=provider)
        if not 0 <= index < n_documents:
            raise ResponseFormatError(
                f"result {position} has index {index}, outside the {n_documents} documents sent", provider=provider
            )
        if index in seen:
            raise ResponseFormatError(f"index {index} appears more than once", provider=provider)
        seen.add(index)
        pairs.append((index, read_score(item, provider, position)))
    return pairs


_INDEX_AND_SCORE = operator.itemgetter("index", "relevance_score")


def _common_shape(items: list[Any], n_documents: int) -> list[tuple[int, float]] | None:
    """The pairs when every item has the common shape (an int `index` in range and unique, a finite float
    `relevance_score`), checked over the whole list at once; None sends the list through the checks item by item,
    which decide the same cases the same way and name what is wrong."""
    if not items or set(map(type, items)) != {dict}:
        return None
    try:
        pairs = list(map(_INDEX_AND_SCORE, items))
    except KeyError:
        return None
    indices, scores = zip(*pairs, strict=True)
    if set(map(type, indices)) != {int} or set(map(type, scores)) != {float}:
        return None
    if min(indices) < 0 or max(indices) >= n_documents or len(set(indices)) != len(indices):
        return None
    # A NaN or an infinity makes the sum non-finite (so may finite scores whose sum overflows): checked one by one.
    if not math.isfinite(sum(scores)):
        return None
    return pairs
