"""Google Vertex AI ranking (the Discovery Engine ranking API):
`POST https://discoveryengine.googleapis.com/v1/projects/{project}/locations/{location}/rankingConfigs/default_ranking_config:rank`.

The body is `model` (sent only when named: the service picks its default), `query`, `topN`, `records[{id, title?,
content}]` (at most 200 per request) and `ignoreRecordDetailsInResponse: true` (no echo). Each record's id is its
position in the batch, so the answer, `records[{id, score}]` sorted by score, maps back by id. The answer is
proto3 JSON, which leaves out default values: a record without `score` scored 0.

Authentication is an OAuth access token from google-auth's Application Default Credentials (a service-account
file in GOOGLE_APPLICATION_CREDENTIALS, `gcloud auth application-default login`, the metadata server), refreshed
before it expires; google-auth comes with the `google` extra. The project is `options["project"]`, else
GOOGLE_CLOUD_PROJECT, else the credentials' own; the location defaults to `global`.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import threading
from collections.abc import Generator, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import httpx

from rerank_core.dialects.base import Dialect, ParsedResponse, refuse_api_key
from rerank_core.errors import AuthenticationError, ConfigurationError, ResponseFormatError
from rerank_core.http.error_mapping import CredentialScrubbing
from rerank_core.models import Document

SCOPE = "https://www.googleapis.com/auth/cloud-platform"
MAX_RECORDS = 200
INSTALL_HINT = "Install the Google extra: pip install 'rerank-core[google]'"
CREDENTIALS_HINT = (
    "Check the Google credentials (GOOGLE_APPLICATION_CREDENTIALS, `gcloud auth application-default login`, or "
    "the attached service account), the discoveryengine.rankingConfigs.rank permission on the project, and that "
    "the Discovery Engine API is enabled"
)
_RANK = re.compile(r"/v1[a-z0-9]*/projects/[^/]+/locations/[^/]+/rankingConfigs/[^/:]+:rank$")


class VertexDialect(Dialect):
    name = "vertex"
    default_base_url = "https://discoveryengine.googleapis.com"
    path = "/v1/projects/{project}/locations/{location}/rankingConfigs/default_ranking_config:rank"
    requires_api_key = False
    score_kind = "unknown"
    max_documents_per_request = MAX_RECORDS
    options = frozenset({"project", "location", "title_field", "user_labels"})
    auth_hint = CREDENTIALS_HINT
    documents_field = "records"

    def __init__(self) -> None:
        self.project: str | None = None

    def check_options(self, options: Mapping[str, Any]) -> None:
        super().check_options(options)
        for key in ("project", "location", "title_field"):
            if key in options and not (isinstance(options[key], str) and options[key].strip()):
                raise ConfigurationError(
                    f"option {key} must be a non-empty str, not {options[key]!r}",
                    provider=self.name,
                    hint='e.g. options={"project": "my-project", "location": "global"}',
                )
        labels = options.get("user_labels")
        if labels is not None and not (
            isinstance(labels, Mapping) and all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items())
        ):
            raise ConfigurationError(
                "user_labels must be a mapping of str to str", provider=self.name, hint='e.g. {"team": "search"}'
            )

    def request_auth(self, options: Mapping[str, Any], api_key: str | None = None) -> httpx.Auth:
        auth = GoogleAuth()
        self.project = _explicit_project(options) or auth.resolve_project()
        return auth

    def url(self, base_url: str, options: Mapping[str, Any] | None = None, *, model: str | None = None) -> str:
        base = base_url.partition("?")[0].rstrip("/")
        if _RANK.search(httpx.URL(base).path):
            return base_url  # a full endpoint (another ranking config, a proxy): as given
        project = self.project or _explicit_project(options or {})
        if not project:
            raise ConfigurationError(
                "no Google Cloud project",
                provider=self.name,
                hint="Pass options={'project': ...}, set GOOGLE_CLOUD_PROJECT, or use credentials that name one",
            )
        location = (options or {}).get("location") or "global"
        path = self.path.format(project=quote(project, safe=""), location=quote(str(location), safe=""))
        if base.endswith("/v1"):
            base = base[: -len("/v1")]
        return base + path

    def headers(self, api_key: str | None) -> dict[str, str]:
        refuse_api_key(self.name, api_key, "Application Default Credentials (see docs/providers.md, Clouds)")
        return {}  # the access token is added per request (`request_auth`)

    def request_body(
        self,
        query: str,
        documents: Sequence[Document],
        *,
        model: str | None,
        top_n: int | None,
        options: Mapping[str, Any],
    ) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if model:
            body["model"] = model
        body["query"] = query
        body["records"] = self.documents_payload(documents, options)
        if top_n is not None:
            body["topN"] = top_n
        body["ignoreRecordDetailsInResponse"] = True
        if options.get("user_labels"):
            body["userLabels"] = dict(options["user_labels"])
        return body

    def documents_payload(self, documents: Sequence[Document], options: Mapping[str, Any]) -> list[Any]:
        title_field = options.get("title_field")
        records = []
        for position, doc in enumerate(documents):
            record: dict[str, Any] = {"id": str(position)}
            title = doc.metadata.get(title_field) if title_field else None
            if title is not None:
                record["title"] = str(title)
            record["content"] = doc.text
            records.append(record)
        return records

    def parse(self, payload: Any, *, headers: Mapping[str, str], n_documents: int) -> ParsedResponse:
        records = payload.get("records", []) if isinstance(payload, dict) else None
        if not isinstance(records, list):
            raise ResponseFormatError("response has no records list", provider=self.name)
        seen: set[int] = set()
        scores: list[tuple[int, float]] = []
        for position, record in enumerate(records):
            index = _index_of(record, n_documents)
            if index is None:
                raise ResponseFormatError(
                    f"record {position} has an id that names none of the {n_documents} records sent",
                    provider=self.name,
                )
            if index in seen:
                raise ResponseFormatError(f"record id {index} appears more than once", provider=self.name)
            seen.add(index)
            score = record.get("score", 0.0)  # proto3 JSON leaves a zero score out
            if isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score):
                raise ResponseFormatError(
                    f"record {position} has a non-finite or non-numeric score {score!r}", provider=self.name
                )
            scores.append((index, float(score)))
        return ParsedResponse(scores=scores, model=None)


class GoogleAuth(httpx.Auth):
    """Adds an OAuth access token from Application Default Credentials to each request, refreshing it (under a
    lock, so concurrent calls refresh once) when google-auth finds it expired or about to expire."""

    def __init__(self) -> None:
        self._credentials: Any = None
        self._project: str | None = None
        self._lock = threading.Lock()
        self.credential_scrubbing = CredentialScrubbing()

    def __repr__(self) -> str:
        return "GoogleAuth(scopes=['cloud-platform'])"

    def _load(self) -> Any:
        """The credentials, found through ADC on first use (caller holds the lock)."""
        if self._credentials is None:
            try:
                import google.auth
                import google.auth.exceptions
            except ImportError:
                raise ConfigurationError(
                    "provider 'vertex' needs google-auth", provider="vertex", hint=INSTALL_HINT
                ) from None
            try:
                self._credentials, self._project = google.auth.default(scopes=[SCOPE])
            except google.auth.exceptions.GoogleAuthError as exc:
                raise AuthenticationError(
                    f"no usable Google credentials ({type(exc).__name__}: {_first_line(exc)})",
                    provider="vertex",
                    hint=CREDENTIALS_HINT,
                ) from None
        return self._credentials

    def resolve_project(self) -> str | None:
        """The credentials' project, loading them now (only when no project was given)."""
        with self._lock:
            try:
                self._load()
            except AuthenticationError as exc:
                raise ConfigurationError(exc.message, provider="vertex", hint=exc.hint) from None
            return self._project

    def authorization(self, method: str, url: str) -> dict[str, str]:
        """The headers google-auth adds (the bearer token, and the quota project where one is set)."""
        headers: dict[str, str] = {}
        with self._lock:
            credentials = self._load()
            import google.auth.exceptions
            import google.auth.transport.requests

            try:
                credentials.before_request(google.auth.transport.requests.Request(), method, url, headers)
            except google.auth.exceptions.GoogleAuthError as exc:
                raise AuthenticationError(
                    f"the Google access token could not be refreshed ({type(exc).__name__}: {_first_line(exc)})",
                    provider="vertex",
                    hint=CREDENTIALS_HINT,
                ) from None
        tokens = [value.removeprefix("Bearer ") for name, value in headers.items() if name.lower() == "authorization"]
        self.credential_scrubbing.update(*tokens)
        return headers

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers.update(self.authorization(request.method, str(request.url)))
        yield request

    async def async_auth_flow(self, request: httpx.Request) -> Any:
        # A refresh is a blocking HTTP call to the token endpoint: run it off the event loop.
        request.headers.update(await asyncio.to_thread(self.authorization, request.method, str(request.url)))
        yield request


def _explicit_project(options: Mapping[str, Any]) -> str | None:
    project = options.get("project") or os.environ.get("GOOGLE_CLOUD_PROJECT", "").strip()
    return str(project).strip() or None


def _index_of(record: object, n_documents: int) -> int | None:
    raw = record.get("id") if isinstance(record, dict) else None
    if not isinstance(raw, str) or not raw.isascii() or not raw.isdigit():
        return None
    index = int(raw)
    return index if index < n_documents and raw == str(index) else None


def _first_line(exc: Exception) -> str:
    # google-auth's messages are about files and endpoints; the first line is enough, and a token never is in it.
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else ""
