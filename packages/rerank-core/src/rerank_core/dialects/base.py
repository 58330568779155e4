"""The dialect interface: how one provider's rerank API is spoken on the wire.

A dialect builds the request body and reads the response quirks of one provider, and nothing else. Transport,
retries, batching, sorting and `top_n` live in the HTTP client and the base reranker. Provider quirks live in
that provider's dialect module and nowhere else.
"""

from __future__ import annotations

import logging
import math
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar
from urllib.parse import urlencode, urlsplit

import httpx

from rerank_core.dialects._documents import rank_fields_of, texts_or_objects
from rerank_core.dialects._parse import parse_results
from rerank_core.errors import ConfigurationError
from rerank_core.models import NO_USAGE, Document, ScoreKind, Usage

logger = logging.getLogger("rerank_core")


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
    score_kind: ClassVar[ScoreKind] = "unknown"
    """What the scores are, claimed only where the provider documents it (e.g. "relevance score between 0 and 1");
    "unknown" otherwise. `base.normalized` still checks the values: a "probability" outside [0, 1] is not one."""
    sends_top_n: ClassVar[bool] = True
    """False where the API has no top_n (the client cuts) or does not honour it."""
    max_documents_per_request: ClassVar[int | None] = None
    """The provider's documented cap, used when the caller sets none (see `max_documents_for`)."""
    options: ClassVar[frozenset[str]] = frozenset()
    """Provider-specific request options accepted through `options={...}`."""
    option_choices: ClassVar[Mapping[str, tuple[object, ...]]] = MappingProxyType({})
    """Options whose documented values are a closed set, checked by `check_options`."""
    default_model: ClassVar[str | None] = None
    """Sent when the caller names no model and the API requires one."""
    requires_model: ClassVar[bool] = False
    """True where the API needs a model and has no sensible default (the caller must name one)."""
    endpoint_names: ClassVar[tuple[str, ...]] = ()
    """Last path segments that mark a base_url as a full endpoint; by default the last segment of `path`."""
    merges_extra_body: ClassVar[bool] = True
    """`options["extra_body"]` is merged last into the JSON body. False where the API has an `extra_body` field of
    its own (the generic platform), which then carries it as given."""

    auth_hint: ClassVar[str | None] = None
    """What to check after a 401/403, for an API that authenticates otherwise than with an API key."""

    def request_auth(self, options: Mapping[str, Any], api_key: str | None = None) -> httpx.Auth | None:
        """Authentication run on every attempt, for clouds that sign or authorize each request from a credential
        chain (AWS SigV4, Google OAuth tokens) or exchange the key for short-lived tokens (watsonx's IAM) rather
        than send a fixed key: a retry is signed anew and short-lived credentials refresh. None (most APIs): the
        key goes in `headers`. Called once per reranker, before `default_base_url_for` and `url`, which may use
        what it resolved (a region, a project)."""
        return None

    def default_base_url_for(self, api_key: str | None) -> str | None:
        """The base URL used when the caller passes none. Voyage picks it from the key's issuer."""
        return self.default_base_url

    def max_documents_for(self, model: str | None) -> int | None:
        """The documented per-request document cap for `model` (Pinecone's differ per model)."""
        return self.max_documents_per_request

    def url(self, base_url: str, options: Mapping[str, Any] | None = None, *, model: str | None = None) -> str:
        """The endpoint for `base_url`, in any form a provider's docs show: the host (`https://api.x.com`), the
        host with the API's version (`.../v1`) or the full endpoint (`.../v1/rerank`). A base ending in the
        endpoint's own name (`/rerank`, `/reranking`, `/ranking`) is taken as the full endpoint, as given. A base
        ending in another version than the dialect's (`cohere` given `.../v1`) gets the dialect's version instead
        of both. A query string in `base_url` is kept; dialects whose API takes query parameters add them from
        `options` (pass the same options as to `build_body`). `model` is for APIs that name it in the path."""
        base, _, query = base_url.partition("?")
        base = self.normalize_base(base.rstrip("/"))
        endpoint = self._endpoint(base, model)
        params = [query] if query else []
        params += [urlencode({key: value}) for key, value in self.query_params(options or {}).items()]
        return endpoint + ("?" + "&".join(params) if params else "")

    def normalize_base(self, base: str) -> str:
        """Hook for a provider whose documented base has a path a user may leave out (Fireworks' `/inference`)."""
        return base

    def path_for(self, model: str | None) -> str:
        """The endpoint's path; DeepInfra's names the model."""
        return self.path

    def _endpoint(self, base: str, model: str | None = None) -> str:
        path = self.path_for(model)
        if _last_segment(base) in (self.endpoint_names or (_last_segment(path),)):  # the full endpoint, as given
            return base
        segments = path.strip("/").split("/")
        # ".../v1" + "/v1/rerank" -> ".../v1/rerank", not ".../v1/v1/rerank".
        for cut in range(len(segments) - 1, 0, -1):
            if base.endswith("/" + "/".join(segments[:cut])):
                return base + "/" + "/".join(segments[cut:])
        # ".../v1" + "/v2/rerank" -> ".../v2/rerank": the dialect speaks its own version, not the one in the base.
        if _VERSION_SEGMENT.fullmatch(segments[0]) and _VERSION_SEGMENT.fullmatch(_last_segment(base)):
            return base[: base.rindex("/")] + path
        return base + path

    def query_params(self, options: Mapping[str, Any]) -> dict[str, str]:
        """URL query parameters taken from `options` (most APIs take none)."""
        return {}

    def score_kind_for(self, options: Mapping[str, Any]) -> ScoreKind:
        """The kind of score the provider returns with these options (e.g. `raw_scores=True` gives logits).
        The HTTP client should report this rather than the class default `score_kind`."""
        return self.score_kind

    def is_batch_too_large(self, status_code: int, body: str) -> bool:
        """True when an error answer means "too many documents in one request": the client then splits the batch
        in halves, as for a 413. Dialects whose server reports this another way (e.g. a 422) override it."""
        return status_code == 413

    def headers(self, api_key: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_key}"} if api_key else {}

    def check_options(self, options: Mapping[str, Any]) -> None:
        accepted = self.options | {"extra_body"} | ({"instruction"} if self.instruction_field else set())
        if "instruction" in options and "instruction" not in accepted:
            raise ConfigurationError(
                f"provider {self.name!r} cannot follow an instruction (its API has no field for one)",
                provider=self.name,
                hint="Drop the instruction option, or use a provider that takes one (vllm, fireworks, dashscope, "
                "contextual, or local with an LLM reranker)",
            )
        if "instruction" in options and (not isinstance(options["instruction"], str) or not options["instruction"]):
            raise ConfigurationError(
                f"option instruction must be a non-empty string, not {options['instruction']!r}", provider=self.name
            )
        if "return_documents" in options and "return_documents" not in accepted:
            raise ConfigurationError(
                f"option 'return_documents' is not accepted for provider {self.name!r}",
                provider=self.name,
                hint="Every result already carries your own input as result.document (with its id and metadata); "
                "the provider's echo is never needed, so rerank-core always asks for none",
            )
        unknown = sorted(set(options) - accepted)
        if unknown:
            allowed = ", ".join(sorted(accepted))
            raise ConfigurationError(
                f"unknown option(s) {unknown} for provider {self.name!r}",
                provider=self.name,
                hint=f"Options this provider accepts: {allowed}. Anything else can go verbatim in extra_body={{...}}",
            )
        if "extra_body" in options:
            self._check_extra_body(options["extra_body"])
        if "rank_fields" in options:
            rank_fields_of(options, self.name)
        for key, choices in self.option_choices.items():
            if key in options and not _one_of(options[key], choices):
                raise ConfigurationError(
                    f"option {key}={options[key]!r} is not valid for provider {self.name!r}",
                    provider=self.name,
                    hint=f"Use one of: {', '.join(repr(choice) for choice in choices)}",
                )

    def _check_extra_body(self, extra: object) -> None:
        if not isinstance(extra, Mapping) or not all(isinstance(key, str) for key in extra):
            raise ConfigurationError(
                f"extra_body must be a mapping of field names to values, not {extra!r}",
                provider=self.name,
                hint='e.g. options={"extra_body": {"priority": 1}}',
            )
        # The documents and query are the client's: results are matched back to your input by position.
        clash = sorted({"query", self.documents_field} & set(extra)) if self.merges_extra_body else []
        if clash:
            raise ConfigurationError(
                f"extra_body may not replace {clash} for provider {self.name!r}",
                provider=self.name,
                hint="Pass the query and documents to rerank(); extra_body is for additional fields",
            )

    instruction_field: ClassVar[str | None] = None
    """The body field that carries an instruction (vLLM `instruction`, Fireworks `task`, DashScope `instruct`), for
    APIs that take one; the option and `rerank(..., instruction=)` are both sent in it. None: the API cannot follow
    one."""
    documents_field: ClassVar[str] = "documents"
    top_n_field: ClassVar[str] = "top_n"
    return_documents_field: ClassVar[str | None] = None
    """The API's flag for echoing documents, always sent as false: the client re-attaches the caller's own."""

    def build_body(
        self,
        query: str,
        documents: Sequence[Document],
        *,
        model: str | None,
        top_n: int | None,
        options: Mapping[str, Any],
    ) -> dict[str, Any]:
        """The request body: `request_body`, then `options["extra_body"]` merged last (it may override any field
        but the query and the documents)."""
        extra = options.get("extra_body") if self.merges_extra_body else None
        if extra is not None:
            options = {key: value for key, value in options.items() if key != "extra_body"}
        body = self.request_body(query, documents, model=model, top_n=top_n, options=options)
        body.update(extra or {})
        return body

    def request_body(
        self,
        query: str,
        documents: Sequence[Document],
        *,
        model: str | None,
        top_n: int | None,
        options: Mapping[str, Any],
    ) -> dict[str, Any]:
        """The shape most rerank APIs share: model (if any), query, documents, top-n, no echo, then the options.
        A dialect names its fields with the class attributes above and overrides only what differs."""
        body: dict[str, Any] = {}
        if model or self.default_model:
            body["model"] = model or self.default_model
        body["query"] = query
        body[self.documents_field] = self.documents_payload(documents, options)
        if self.return_documents_field:
            body[self.return_documents_field] = False
        if top_n is not None and self.sends_top_n:
            body[self.top_n_field] = top_n
        body.update(self.body_options(options))
        return body

    def documents_payload(self, documents: Sequence[Document], options: Mapping[str, Any]) -> list[Any]:
        """Plain texts; objects carrying the named metadata fields where the API takes `rank_fields`."""
        fields = rank_fields_of(options, self.name) if "rank_fields" in self.options else None
        if fields:
            warn_missing_rank_fields(documents, fields, self.name)
        return texts_or_objects(documents, fields)

    def with_instruction(self, options: Mapping[str, Any], instruction: str | None) -> Mapping[str, Any]:
        """The options with the instruction (this call's, else the configured one) under the API's field name."""
        field = self.instruction_field
        chosen = instruction if instruction is not None else options.get("instruction")
        if field is None or chosen is None:
            return options
        rest = {key: value for key, value in options.items() if key not in ("instruction", field)}
        return {**rest, field: chosen}

    def body_options(self, options: Mapping[str, Any]) -> Mapping[str, Any]:
        """The options that go into the body as given (for most APIs, all of them)."""
        return options

    def parse(self, payload: Any, *, headers: Mapping[str, str], n_documents: int) -> ParsedResponse:
        """Read a 2xx body. The default handles the common `{results|data: [{index, relevance_score}]}` shape."""
        return ParsedResponse(
            scores=parse_results(payload, n_documents=n_documents, provider=self.name),
            model=string_or_none(payload, "model"),
            usage=usage_from(payload.get("usage") if isinstance(payload, dict) else None),
            request_id=string_or_none(payload, "id"),
        )


_VERSION_SEGMENT = re.compile(r"v\d+")


def _last_segment(url_or_path: str) -> str:
    """The last segment of the URL's path ("" for a bare host: a host named `rerank` is not an endpoint)."""
    path = urlsplit(url_or_path).path if "://" in url_or_path else url_or_path
    return path.rstrip("/").rsplit("/", 1)[-1]


def warn_missing_rank_fields(documents: Sequence[Document], fields: Sequence[str], provider: str) -> None:
    """Warn when a rank field is in no document's metadata: every document then ranks on nothing for that field,
    and with only such fields the scores collapse to one value. A warning, not an error: documents from a
    retriever often carry a field only some of the time."""
    missing = [name for name in fields if name != "text" and not any(name in doc.metadata for doc in documents)]
    if missing:
        warnings.warn(
            f"{provider}: rank_fields {missing} appear in no document's metadata in this request; "
            "check the field names (only 'text' and metadata keys are sent)",
            RankFieldsWarning,
            stacklevel=2,
        )


class RankFieldsWarning(UserWarning):
    """`rank_fields` names a field that no document in the request carries."""


def _one_of(value: object, choices: tuple[object, ...]) -> bool:
    # Same type too: `1 == True`, but a JSON schema asking for a boolean rejects 1.
    return any(type(value) is type(choice) and value == choice for choice in choices)


def choices(**allowed: tuple[object, ...]) -> Mapping[str, tuple[object, ...]]:
    """A read-only `option_choices` table."""
    return MappingProxyType(allowed)


MAX_USAGE = 2**53
"""Above this a usage counter is not a count (and would lose precision as a float): it is dropped."""


def usage_count(value: object) -> int | None:
    """A usage counter as a provider reports it: a non-negative integer, or a float with an integral value (some
    send `3.0`), below `MAX_USAGE`. Anything else (NaN, 1e400, a string, a negative or absurd number) is dropped
    rather than trusted: usage is accounting, and a broken counter must not refuse a valid ranking."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        number = None
    elif isinstance(value, float):
        number = int(value) if math.isfinite(value) and value.is_integer() and 0 <= value < MAX_USAGE else None
    else:
        number = value if 0 <= value < MAX_USAGE else None
    if number is None and value is not None:
        logger.debug("rerank: ignoring a usage counter that is not a count: %.40r", value)
    return number


def usage_count_text(raw: str | None) -> int | None:
    """`usage_count` of a header value: ASCII digits only (`str.isdigit` also accepts "²")."""
    if raw is None:
        return None
    text = raw.strip()
    return usage_count(int(text)) if _DIGITS.fullmatch(text) else usage_count(text)


_DIGITS = re.compile(r"[0-9]{1,16}")


def usage_from(raw: object) -> Usage:
    if not isinstance(raw, dict) or not raw:
        return NO_USAGE
    return Usage(
        prompt_tokens=usage_count(raw.get("prompt_tokens")),
        total_tokens=usage_count(raw.get("total_tokens")),
        search_units=usage_count(raw.get("search_units")),
        rerank_units=usage_count(raw.get("rerank_units")),
    )


def string_or_none(payload: object, key: str) -> str | None:
    value = payload.get(key) if isinstance(payload, dict) else None
    return value if isinstance(value, str) else None


def refuse_api_key(provider: str, api_key: str | None, instead: str) -> None:
    """For clouds that sign requests from their own credential chain: a key passed in would be silently unused."""
    if api_key:
        raise ConfigurationError(
            f"provider {provider!r} takes no api_key",
            provider=provider,
            hint=f"It authenticates with {instead}; drop api_key (the key is not shown here)",
        )
