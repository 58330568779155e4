"""The one tolerant response parser every dialect shares.

Tolerant about shape (list under `results`, `data` or `rankings`, or a bare list; score under
`relevance_score`, `score` or `logit`), strict about content: indices in range and unique, scores finite.
A violation raises `ResponseFormatError`; nothing is silently dropped. Echoed documents are ignored, because
the client re-attaches the caller's own input by index.
"""

from __future__ import annotations

import math
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
    seen: set[int] = set()
    pairs: list[tuple[int, float]] = []
    isfinite = math.isfinite
    for position, item in enumerate(find_list(payload, provider)):
        # Fast path for the common shape (an int index, a float `relevance_score`); anything else takes the full
        # checks below, which decide the same cases the same way and name what is wrong.
        if type(item) is dict:
            index, score = item.get("index"), item.get("relevance_score")
            if (
                type(index) is int
                and type(score) is float
                and 0 <= index < n_documents
                and index not in seen
                and isfinite(score)
            ):
                seen.add(index)
                pairs.append((index, score))
                continue
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
