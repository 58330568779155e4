"""The dialect interface: how one provider's rerank API is spoken on the wire.

A dialect builds the request body and reads the response quirks of one provider, and nothing else. Transport,
retries, batching, sorting and `top_n` live in the HTTP client and the base reranker. Provider quirks live in
that provider's dialect module and nowhere else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from rerank_core.dialects._parse import parse_results
from rerank_core.errors import ConfigurationError
from rerank_core.models import Document, ScoreKind, Usage


@dataclass
class ParsedResponse:
    """A provider's answer, validated: one (index, score) per returned document."""

    scores: list[tuple[int, float]]
    model: str | None = None
    usage: Usage = field(default_factory=Usage)
    request_id: str | None = None


class Dialect:
    """One wire format. Subclasses set the class attributes and override `build_body` and, if needed, the rest."""

    name: ClassVar[str]
    default_base_url: ClassVar[str | None]
    """None for self-hosted servers, where `base_url` is required."""
    path: ClassVar[str] = "/rerank"
    api_key_env: ClassVar[str | None] = None
    requires_api_key: ClassVar[bool] = True
    score_kind: ClassVar[ScoreKind] = "probability"
    sends_top_n: ClassVar[bool] = True
    """False where the API has no top_n (the client cuts) or does not honour it."""
    max_documents_per_request: ClassVar[int | None] = None
    """The provider's documented cap, used when the caller sets none."""
    options: ClassVar[frozenset[str]] = frozenset()
    """Provider-specific request options accepted through `options={...}`."""

    def url(self, base_url: str) -> str:
        base = base_url.rstrip("/")
        # Accept a full endpoint URL as well as the documented base URL.
        return base if base.endswith(self.path) else base + self.path

    def headers(self, api_key: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_key}"} if api_key else {}

    def check_options(self, options: Mapping[str, Any]) -> None:
        unknown = sorted(set(options) - self.options)
        if unknown:
            allowed = ", ".join(sorted(self.options)) or "none"
            raise ConfigurationError(
                f"unknown option(s) {unknown} for provider {self.name!r}",
                provider=self.name,
                hint=f"Options this provider accepts: {allowed}",
            )

    def build_body(
        self,
        query: str,
        documents: Sequence[Document],
        *,
        model: str | None,
        top_n: int | None,
        options: Mapping[str, Any],
    ) -> dict[str, Any]:
        raise NotImplementedError

    def parse(self, payload: Any, *, headers: Mapping[str, str], n_documents: int) -> ParsedResponse:
        """Read a 2xx body. The default handles the common `{results|data: [{index, relevance_score}]}` shape."""
        return ParsedResponse(
            scores=parse_results(payload, n_documents=n_documents, provider=self.name),
            model=_str_or_none(payload, "model"),
            usage=usage_from(payload.get("usage") if isinstance(payload, dict) else None),
            request_id=_str_or_none(payload, "id"),
        )


def usage_from(raw: object) -> Usage:
    if not isinstance(raw, dict):
        return Usage()

    def number(key: str) -> int | None:
        value = raw.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    return Usage(
        prompt_tokens=number("prompt_tokens"),
        total_tokens=number("total_tokens"),
        search_units=number("search_units"),
        rerank_units=number("rerank_units"),
    )


def _str_or_none(payload: object, key: str) -> str | None:
    value = payload.get(key) if isinstance(payload, dict) else None
    return value if isinstance(value, str) else None
