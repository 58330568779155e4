"""`HTTPReranker`: any hosted or self-hosted rerank API, spoken through its dialect.

The dialect builds bodies and reads answers; this module moves them: pooled httpx clients (sync and native
async), timeouts, retries, batching with bounded fan-out, 413 splitting, and checks that the provider answered
for every document it was asked about.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeoutError
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import httpx
from pydantic import SecretStr

from rerank_core._errors_map import (
    Scrubber,
    describe_response,
    error_from_exception,
    error_from_response,
    format_error,
    request_id_from,
    truncate,
    with_context,
)
from rerank_core.base import Normalize, Reranker, Scores
from rerank_core.dialects import ParsedResponse, get_dialect
from rerank_core.errors import ConfigurationError, InvalidInputError, InvalidRequestError, RerankError
from rerank_core.models import Document, Usage
from rerank_core.retry import RetryPolicy

logger = logging.getLogger(__name__)

try:
    _VERSION = metadata.version("rerank-core")
except metadata.PackageNotFoundError:  # running from a source tree
    _VERSION = "0"
USER_AGENT = f"rerank-core/{_VERSION}"
_SECRET_HEADER_WORDS = ("auth", "key", "token", "secret", "cookie")


@dataclass
class _Part:
    """One answered request: scores for the documents `offset .. offset + n` of the caller's list."""

    offset: int
    parsed: ParsedResponse
    request_id: str | None


class HTTPReranker(Reranker):
    """A reranker backed by a provider's rerank endpoint.

    >>> with HTTPReranker("generic", model="m", base_url="http://localhost:8080", api_key="sk-...") as reranker:
    ...     reranker.rerank("query", ["doc a", "doc b"])  # doctest: +SKIP
    """

    def __init__(
        self,
        provider: str,
        *,
        model: str | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 2,
        max_documents_per_request: int | None = None,
        max_concurrency: int = 4,
        options: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        normalize: Normalize | None = None,
        http_client: httpx.Client | None = None,
        async_http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.dialect = get_dialect(provider)
        self.provider = self.dialect.name
        self.model = model or self.dialect.default_model
        if self.dialect.requires_model and not self.model:
            raise ConfigurationError(
                f"provider {self.provider!r} needs a model",
                provider=self.provider,
                hint=f'Name it in the spec, e.g. "{self.provider}:<model or deployment id>", or pass model=...',
            )
        self.options: dict[str, Any] = dict(options or {})
        self.dialect.check_options(self.options)
        self.score_kind = self.dialect.score_kind_for(self.options)
        if normalize not in (None, "sigmoid"):
            raise ConfigurationError(f"normalize must be 'sigmoid' or None, not {normalize!r}", provider=self.provider)
        self.normalize = normalize
        self.timeout = _positive_float("timeout", timeout, self.provider)
        self.max_concurrency = _positive_int("max_concurrency", max_concurrency, self.provider)
        self.max_documents_per_request = (
            self.dialect.max_documents_per_request
            if max_documents_per_request is None
            else _positive_int("max_documents_per_request", max_documents_per_request, self.provider)
        )
        try:
            self.retry_policy = RetryPolicy(max_retries=max_retries)
        except ValueError as exc:
            raise ConfigurationError(str(exc), provider=self.provider) from None

        key = api_key or _env_key(self.dialect.api_key_env)
        if key is None and self.dialect.requires_api_key:
            raise ConfigurationError(
                f"no API key for provider {self.provider!r}",
                provider=self.provider,
                hint=f"Pass api_key=... or set the {self.dialect.api_key_env} environment variable",
            )
        self._api_key = SecretStr(key) if key else None
        # Lower-cased, so a caller's header replaces ours instead of going out next to it.
        self._extra_headers = {name.lower(): value for name, value in (headers or {}).items()}
        self.base_url = _resolve_base_url(base_url, self.dialect.default_base_url, self.provider)
        self.url = self.dialect.url(self.base_url, self.options)
        secret_headers = [
            v for k, v in self._extra_headers.items() if any(w in k.lower() for w in _SECRET_HEADER_WORDS)
        ]
        self._scrub = Scrubber([key, httpx.URL(self.url).password, *secret_headers])

        self._given_client = http_client
        self._given_async_client = async_http_client
        self._client: httpx.Client | None = None
        # One owned AsyncClient per event loop: pooled connections belong to the loop that opened them.
        self._async_clients: dict[asyncio.AbstractEventLoop, httpx.AsyncClient] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._lock = threading.Lock()

    @property
    def scoring_signature(self) -> str:
        # The endpoint too: two self-hosted servers may serve different models under one (or no) model name.
        options = json.dumps(self.options, sort_keys=True, default=str)
        return "\x00".join((super().scoring_signature, self._scrub(self.url), options))

    def scored_content(self, document: Document) -> str:
        # Exactly what goes on the wire for this document (the dialect decides), for the score cache's key.
        payload = self.dialect.documents_payload([document], self.options)[0]
        return payload if isinstance(payload, str) else json.dumps(payload, sort_keys=True, default=str)

    @property
    def max_retries(self) -> int:
        return self.retry_policy.max_retries

    def __repr__(self) -> str:
        return (
            f"HTTPReranker(provider={self.provider!r}, model={self.model!r}, "
            f"base_url={self._scrub(self.base_url)!r}, timeout={self.timeout:g}, max_retries={self.max_retries})"
        )

    # -- scoring ----------------------------------------------------------------------------------------------

    def _score(self, query: str, documents: list[Document], top_n: int | None) -> Scores:
        client = self._sync_client()
        spans = self._spans(len(documents))
        if len(spans) == 1:
            return self._merge(self._score_span(client, query, documents, 0, top_n))
        failed = threading.Event()

        def batch(start: int, end: int) -> list[_Part]:
            if failed.is_set():  # the call is already lost: send nothing more
                return []
            try:
                return self._score_span(client, query, documents[start:end], start, top_n)
            except BaseException:
                failed.set()
                raise

        parts: list[_Part] = []
        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(spans))) as pool:
            # A batch is skipped only after another failed, and that failure is raised here: nothing is lost.
            for job in [pool.submit(batch, start, end) for start, end in spans]:
                parts += job.result()
        return self._merge(parts)

    async def _ascore(self, query: str, documents: list[Document], top_n: int | None) -> Scores:
        client = self._async_client()
        spans = self._spans(len(documents))
        if len(spans) == 1:
            return self._merge(await self._ascore_span(client, query, documents, 0, top_n, None))
        semaphore = asyncio.Semaphore(self.max_concurrency)
        tasks = [
            asyncio.ensure_future(self._ascore_span(client, query, documents[a:b], a, top_n, semaphore))
            for a, b in spans
        ]
        try:
            answers = await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        return self._merge([part for parts in answers for part in parts])

    def _spans(self, n: int) -> list[tuple[int, int]]:
        size = self.max_documents_per_request or n
        return [(start, min(start + size, n)) for start in range(0, n, size)]

    def _score_span(
        self, client: httpx.Client, query: str, documents: list[Document], offset: int, top_n: int | None
    ) -> list[_Part]:
        """One batch; if the provider says 413, the two halves instead (down to single documents)."""
        try:
            return [self._exchange(client, query, documents, offset, top_n)]
        except InvalidRequestError as exc:
            if exc.status_code != 413 or len(documents) == 1:
                raise
        half = len(documents) // 2
        self._log_split(len(documents))
        return self._score_span(client, query, documents[:half], offset, top_n) + self._score_span(
            client, query, documents[half:], offset + half, top_n
        )

    async def _ascore_span(
        self,
        client: httpx.AsyncClient,
        query: str,
        documents: list[Document],
        offset: int,
        top_n: int | None,
        semaphore: asyncio.Semaphore | None,
    ) -> list[_Part]:
        try:
            async with semaphore or contextlib.nullcontext():
                return [await self._aexchange(client, query, documents, offset, top_n)]
        except InvalidRequestError as exc:
            if exc.status_code != 413 or len(documents) == 1:
                raise
        half = len(documents) // 2
        self._log_split(len(documents))
        first = await self._ascore_span(client, query, documents[:half], offset, top_n, semaphore)
        return first + await self._ascore_span(client, query, documents[half:], offset + half, top_n, semaphore)

    def _exchange(
        self, client: httpx.Client, query: str, documents: list[Document], offset: int, top_n: int | None
    ) -> _Part:
        content, batch_top_n = self._body(query, documents, top_n)
        retries = 0
        while True:
            try:
                answer: httpx.Response | httpx.TransportError = client.post(
                    self.url, content=content, headers=self._headers(), timeout=self.timeout
                )
            except httpx.TransportError as exc:
                answer = exc
            outcome = self._outcome(answer, retries, len(documents), offset, batch_top_n)
            if isinstance(outcome, _Part):
                return outcome
            self.retry_policy.sleep(outcome)
            retries += 1

    async def _aexchange(
        self, client: httpx.AsyncClient, query: str, documents: list[Document], offset: int, top_n: int | None
    ) -> _Part:
        content, batch_top_n = self._body(query, documents, top_n)
        retries = 0
        while True:
            try:
                answer: httpx.Response | httpx.TransportError = await client.post(
                    self.url, content=content, headers=self._headers(), timeout=self.timeout
                )
            except httpx.TransportError as exc:
                answer = exc
            outcome = self._outcome(answer, retries, len(documents), offset, batch_top_n)
            if isinstance(outcome, _Part):
                return outcome
            await self.retry_policy.asleep(outcome)
            retries += 1

    def _outcome(
        self,
        answer: httpx.Response | httpx.TransportError,
        retries: int,
        n_documents: int,
        offset: int,
        batch_top_n: int | None,
    ) -> _Part | float:
        """The parsed part of a success, else the delay before the next attempt; raises once retries are spent."""
        if isinstance(answer, httpx.TransportError):
            delay = self.retry_policy.delay(retries, None, None)
            if delay is None:
                raise self._transport_error(answer, retries + 1) from answer
            self._log_retry(delay, retries, _describe_exception(answer, self._scrub))
            return delay
        if answer.is_success:
            return self._parse(answer, n_documents, offset, batch_top_n)
        delay = self.retry_policy.delay(retries, answer.status_code, answer.headers)
        if delay is None:
            raise self._status_error(answer, retries + 1)
        self._log_retry(delay, retries, describe_response(answer, self._scrub))
        return delay

    # -- wire -------------------------------------------------------------------------------------------------

    def _body(self, query: str, documents: list[Document], top_n: int | None) -> tuple[bytes, int | None]:
        # Per-batch top_n is safe: the global top n is contained in the union of every batch's top n.
        batch_top_n = min(top_n, len(documents)) if top_n is not None and self.dialect.sends_top_n else None
        body = self.dialect.build_body(query, documents, model=self.model, top_n=batch_top_n, options=self.options)
        try:
            # default=str: metadata may hold dates and the like; the provider only sees it, results keep originals.
            content = json.dumps(body, ensure_ascii=False, allow_nan=False, default=str).encode()
        except ValueError as exc:
            raise InvalidInputError(
                f"the request cannot be encoded as JSON: {exc}", provider=self.provider, hint="Remove NaN/inf values"
            ) from None
        return content, batch_top_n

    def _headers(self) -> dict[str, str]:
        key = self._api_key.get_secret_value() if self._api_key else None
        headers = {"content-type": "application/json", "accept": "application/json", "user-agent": USER_AGENT}
        headers.update((name.lower(), value) for name, value in self.dialect.headers(key).items())
        headers.update(self._extra_headers)
        return headers

    def _parse(self, response: httpx.Response, n_documents: int, offset: int, batch_top_n: int | None) -> _Part:
        header_id = request_id_from(response.headers)
        try:
            payload = json.loads(response.content)
        except ValueError as exc:
            raise format_error(
                f"response is not valid JSON ({exc}): {truncate(response.text, 120)!r}",
                provider=self.provider,
                response=response,
                request_id=header_id,
                scrub=self._scrub,
            ) from None
        try:
            parsed = self.dialect.parse(payload, headers=response.headers, n_documents=n_documents)
        except RerankError as exc:
            raise with_context(
                exc,
                provider=self.provider,
                status_code=response.status_code,
                request_id=header_id,
                scrub=self._scrub,
            ) from None
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise format_error(
                f"unexpected response shape ({type(exc).__name__}: {exc})",
                provider=self.provider,
                response=response,
                request_id=header_id,
                scrub=self._scrub,
            ) from None
        request_id = parsed.request_id or header_id
        expected = n_documents if batch_top_n is None else batch_top_n
        if len(parsed.scores) < expected:
            asked = "all of them" if batch_top_n is None else f"top_n={batch_top_n}"
            raise format_error(
                f"the provider returned {len(parsed.scores)} scores for {n_documents} documents ({asked})",
                provider=self.provider,
                response=response,
                request_id=request_id,
                scrub=self._scrub,
            )
        return _Part(offset=offset, parsed=parsed, request_id=request_id)

    def _merge(self, parts: Sequence[_Part]) -> Scores:
        scores: dict[int, float] = {}
        usage = Usage()
        model = None
        for part in parts:
            scores.update((part.offset + index, score) for index, score in part.parsed.scores)
            usage = usage + part.parsed.usage
            model = model or part.parsed.model
        return Scores(
            scores=scores,
            provider=self.provider,
            model=model or self.model,
            score_kind=self.score_kind,
            usage=usage,
            request_ids=[part.request_id for part in parts if part.request_id],
        )

    # -- errors and logs --------------------------------------------------------------------------------------

    def _status_error(self, response: httpx.Response, attempts: int) -> RerankError:
        return error_from_response(
            response,
            provider=self.provider,
            attempts=attempts,
            scrub=self._scrub,
            api_key_env=self.dialect.api_key_env,
        )

    def _transport_error(self, exc: httpx.TransportError, attempts: int) -> RerankError:
        return error_from_exception(
            exc, provider=self.provider, url=self.url, timeout=self.timeout, attempts=attempts, scrub=self._scrub
        )

    def _log_retry(self, delay: float, retries_done: int, reason: str) -> None:
        logger.info(
            "%s: retry %d of %d in %.2f s after %s",
            self.provider,
            retries_done + 1,
            self.max_retries,
            delay,
            reason,
        )

    def _log_split(self, size: int) -> None:
        logger.info("%s: 413 for %d documents; splitting the batch in half", self.provider, size)

    # -- clients ----------------------------------------------------------------------------------------------

    def _sync_client(self) -> httpx.Client:
        if self._given_client is not None:
            return self._given_client
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(limits=self._limits())
            return self._client

    def _async_client(self) -> httpx.AsyncClient:
        if self._given_async_client is not None:
            return self._given_async_client
        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._async_clients.get(loop)
            if client is None:
                # Forget clients of loops that are gone (e.g. an earlier `asyncio.run`); they cannot be reused.
                for stale in [old for old in self._async_clients if old.is_closed()]:
                    del self._async_clients[stale]
                client = self._async_clients[loop] = httpx.AsyncClient(limits=self._limits())
            return client

    def _limits(self) -> httpx.Limits:
        keepalive = max(20, self.max_concurrency)
        return httpx.Limits(max_connections=max(100, keepalive), max_keepalive_connections=keepalive)

    def warm_up(self) -> None:
        """Open the pooled sync client now (connections themselves open on first use)."""
        self._sync_client()

    def close(self) -> None:
        """Close the pooled clients this reranker opened (never ones passed in). It reopens them if used again."""
        with self._lock:
            client, self._client = self._client, None
            async_clients = list(self._async_clients.items())
            self._async_clients.clear()
        if client is not None:
            client.close()
        for loop, async_client in async_clients:
            self._close_on_loop(loop, async_client)

    async def aclose(self) -> None:
        with self._lock:
            client = self._async_clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()
        self.close()

    def _close_on_loop(self, loop: asyncio.AbstractEventLoop, client: httpx.AsyncClient) -> None:
        """Close an AsyncClient from sync code, on the loop its connections belong to, if that loop still lives."""
        if loop.is_closed():
            return  # its connections died with the loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            task = loop.create_task(client.aclose())
            self._closing.add(task)  # keep a reference until done
            task.add_done_callback(self._closing.discard)
        elif loop.is_running():  # in another thread: close there, and wait a little for it
            with contextlib.suppress(FutureTimeoutError):
                asyncio.run_coroutine_threadsafe(client.aclose(), loop).result(timeout=5)
        else:
            loop.run_until_complete(client.aclose())


def _env_key(name: str | None) -> str | None:
    return (os.environ.get(name) or None) if name else None


def _resolve_base_url(base_url: str | None, default: str | None, provider: str) -> str:
    url = base_url or default
    if not url:
        raise ConfigurationError(
            f"provider {provider!r} has no default base_url",
            provider=provider,
            hint="Pass base_url=... (the server's address, e.g. http://localhost:8080)",
        )
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ConfigurationError(f"invalid base_url: {exc}", provider=provider) from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigurationError(
            "base_url must be an absolute http(s) URL", provider=provider, hint="e.g. https://api.example.com/v1"
        )
    return url


def _positive_int(name: str, value: object, provider: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{name} must be an int >= 1, not {value!r}", provider=provider)
    return value


def _positive_float(name: str, value: object, provider: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigurationError(f"{name} must be a number > 0, not {value!r}", provider=provider)
    return float(value)


def _describe_exception(exc: Exception, scrub: Scrubber) -> str:
    return f"{type(exc).__name__}: {scrub(str(exc))}" if str(exc) else type(exc).__name__
