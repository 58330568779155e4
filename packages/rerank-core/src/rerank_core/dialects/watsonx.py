"""IBM watsonx.ai text rerank: `POST https://{region}.ml.cloud.ibm.com/ml/v1/text/rerank?version=...`.

The body is `model_id` (cross-encoder/ms-marco-minilm-l-12-v2 by default), `query`, `inputs[{text}]`, one of
`project_id` / `space_id`, and `parameters{truncate_input_tokens?, return_options{top_n}}`. The answer is
`results[{index, score}]` with `input_token_count`. The `version` query parameter dates the API (default below).

The API key (WATSONX_APIKEY) is never sent to watsonx itself: it is exchanged at IBM Cloud IAM
(`https://iam.cloud.ibm.com/identity/token`, or `options["iam_url"]`) for a bearer token, which is cached and
refreshed a minute before it expires, once for all concurrent calls. The token request goes through the
reranker's own client, so it shares its timeouts, proxies and TLS settings. The base URL is the region's
(`WATSONX_URL`, else us-south); the project or space comes from options, else WATSONX_PROJECT_ID / WATSONX_SPACE_ID.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import weakref
from collections.abc import AsyncGenerator, Generator, Mapping, Sequence
from typing import Any

import httpx

from rerank_core.dialects._parse import parse_results
from rerank_core.dialects.base import Dialect, ParsedResponse, string_or_none, usage_count
from rerank_core.errors import AuthenticationError, ConfigurationError
from rerank_core.http.error_mapping import CredentialScrubbing
from rerank_core.models import Document, Usage

IAM_URL = "https://iam.cloud.ibm.com/identity/token"
API_VERSION = "2024-05-31"
REFRESH_MARGIN = 60.0
"""Seconds before expiry at which a token is replaced: a request must not leave with a token that lapses on the way."""
IAM_HINT = "Check WATSONX_APIKEY (an IBM Cloud API key with access to the watsonx.ai project or space)"


class WatsonxDialect(Dialect):
    name = "watsonx"
    default_base_url = "https://us-south.ml.cloud.ibm.com"
    path = "/ml/v1/text/rerank"
    api_key_env = "WATSONX_APIKEY"
    default_model = "cross-encoder/ms-marco-minilm-l-12-v2"
    options = frozenset({"project_id", "space_id", "version", "iam_url", "truncate_input_tokens"})
    auth_hint = IAM_HINT

    def check_options(self, options: Mapping[str, Any]) -> None:
        super().check_options(options)
        for key in ("project_id", "space_id", "version", "iam_url"):
            if key in options and not (isinstance(options[key], str) and options[key].strip()):
                raise ConfigurationError(
                    f"option {key} must be a non-empty str, not {options[key]!r}", provider=self.name
                )
        if "project_id" in options and "space_id" in options:
            raise ConfigurationError("give project_id or space_id, not both", provider=self.name)
        if not _scope(options):
            raise ConfigurationError(
                "watsonx needs a project or a deployment space",
                provider=self.name,
                hint="Pass options={'project_id': ...} (or 'space_id'), or set WATSONX_PROJECT_ID / WATSONX_SPACE_ID",
            )

    def request_auth(self, options: Mapping[str, Any], api_key: str | None = None) -> httpx.Auth:
        if not api_key:
            raise ConfigurationError("no API key for provider 'watsonx'", provider=self.name, hint=IAM_HINT)
        return IAMTokenAuth(api_key, str(options.get("iam_url") or IAM_URL))

    def default_base_url_for(self, api_key: str | None) -> str | None:
        return os.environ.get("WATSONX_URL", "").strip() or self.default_base_url

    def headers(self, api_key: str | None) -> dict[str, str]:
        return {}  # the IAM bearer token is added per request by `IAMTokenAuth`; the key itself never goes here

    def query_params(self, options: Mapping[str, Any]) -> dict[str, str]:
        return {"version": str(options.get("version") or API_VERSION)}

    def request_body(
        self,
        query: str,
        documents: Sequence[Document],
        *,
        model: str | None,
        top_n: int | None,
        options: Mapping[str, Any],
    ) -> dict[str, Any]:
        parameters: dict[str, Any] = {}
        if "truncate_input_tokens" in options:
            parameters["truncate_input_tokens"] = options["truncate_input_tokens"]
        if top_n is not None:
            parameters["return_options"] = {"top_n": top_n}
        body: dict[str, Any] = {
            "model_id": model or self.default_model,
            "query": query,
            "inputs": [{"text": doc.text} for doc in documents],
            **_scope(options),
        }
        if parameters:
            body["parameters"] = parameters
        return body

    def parse(self, payload: Any, *, headers: Mapping[str, str], n_documents: int) -> ParsedResponse:
        tokens = usage_count(payload.get("input_token_count")) if isinstance(payload, dict) else None
        return ParsedResponse(
            scores=parse_results(payload, n_documents=n_documents, provider=self.name),
            model=string_or_none(payload, "model_id"),
            usage=Usage(prompt_tokens=tokens, total_tokens=tokens),
        )


SCOPES = (("project_id", "WATSONX_PROJECT_ID"), ("space_id", "WATSONX_SPACE_ID"))


def _scope(options: Mapping[str, Any]) -> dict[str, str]:
    """The project or space the call runs in: an option first, then the environment."""
    for key, _env in SCOPES:
        if options.get(key):
            return {key: str(options[key])}
    for key, env in SCOPES:
        if os.environ.get(env, "").strip():
            return {key: os.environ[env].strip()}
    return {}


class IAMTokenAuth(httpx.Auth):
    """Exchanges the API key for an IAM bearer token through the caller's own client, caches it, and fetches a new
    one shortly before it expires: one exchange at a time, however many calls are waiting."""

    def __init__(self, api_key: str, iam_url: str) -> None:
        self._api_key = api_key
        self.iam_url = iam_url
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()
        self._loop_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        self.credential_scrubbing = CredentialScrubbing()

    def __repr__(self) -> str:
        return f"IAMTokenAuth(iam_url={self.iam_url!r})"

    def _fresh(self) -> str | None:
        return self._token if time.time() < self._expires_at - REFRESH_MARGIN else None

    def _token_request(self) -> httpx.Request:
        return httpx.Request(
            "POST",
            self.iam_url,
            data={"grant_type": "urn:ibm:params:oauth:grant-type:apikey", "apikey": self._api_key},
            headers={"accept": "application/json"},
        )

    def _accept(self, response: httpx.Response) -> str:
        try:
            payload = response.json() if response.is_success else None
        except ValueError:
            payload = None
        token = payload.get("access_token") if isinstance(payload, dict) else None
        if not isinstance(token, str) or not token:
            said = "" if response.is_success else f" (HTTP {response.status_code})"
            raise AuthenticationError(
                f"IBM Cloud IAM did not exchange the API key for a token{said}", provider="watsonx", hint=IAM_HINT
            )
        expiration = payload.get("expiration") if isinstance(payload, dict) else None
        expires_in = payload.get("expires_in") if isinstance(payload, dict) else None
        if isinstance(expiration, int | float) and not isinstance(expiration, bool):
            self._expires_at = float(expiration)
        elif isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
            self._expires_at = time.time() + float(expires_in)
        else:
            self._expires_at = time.time() + REFRESH_MARGIN * 2
        self.credential_scrubbing.update(token)
        self._token = token
        return token

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        with self._lock:
            token = self._fresh()
            if token is None:
                response = yield self._token_request()
                response.read()
                token = self._accept(response)
        request.headers["Authorization"] = f"Bearer {token}"
        yield request

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = self._fresh()
        if token is None:
            loop = asyncio.get_running_loop()
            lock = self._loop_locks.setdefault(loop, asyncio.Lock())
            async with lock:
                token = self._fresh()
                if token is None:
                    response = yield self._token_request()
                    await response.aread()
                    token = self._accept(response)
        request.headers["Authorization"] = f"Bearer {token}"
        yield request
