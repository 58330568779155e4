"""`HTTPReranker`: any hosted or self-hosted rerank API, spoken through its dialect.

The dialect builds bodies and reads answers; this module moves them: through the pooled clients (`pool.py`), to
the least busy of the deployment's replicas (`replicas.py`), under a reranker-wide fair limit on requests in
flight (`inflight.py`), with a deadline per attempt (`deadline.py`), retries (`retry.py`), batching with bounded
fan-out, splitting of batches the provider finds too large (or that time out), a cap on response size, and checks
that the provider answered for every document it was asked about. Failures become typed errors in
`error_mapping.py`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import threading
import time
import weakref
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import httpx
from pydantic import SecretStr

from rerank_core import tracing
from rerank_core._checks import setting_int
from rerank_core._json import body_bytes
from rerank_core._json import dumps as encode_json
from rerank_core._secret_names import looks_secret
from rerank_core._version import VERSION
from rerank_core.base import Normalize, Reranker, Scores
from rerank_core.dialects import ParsedResponse, get_dialect
from rerank_core.errors import ConfigurationError, RerankError
from rerank_core.http.deadline import attempt_deadline
from rerank_core.http.error_mapping import (
    LOG_SCRUBBING,
    CredentialScrubbing,
    Scrubber,
    basic_credentials,
    describe_response,
    error_from_exception,
    error_from_response,
    format_error,
    request_id_from,
    truncate,
    with_context,
)
from rerank_core.http.inflight import InFlightLimit
from rerank_core.http.pool import ASYNC_POOL_SHARD, ClientPool
from rerank_core.http.replicas import Replica, Replicas
from rerank_core.http.retry import RetryPolicy
from rerank_core.limits import (
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_MAX_RETRY_AFTER,
    MAX_CONCURRENCY,
    MAX_TIMEOUT,
)
from rerank_core.models import NO_USAGE, Document

logger = logging.getLogger(__name__)

USER_AGENT = f"rerank-core/{VERSION}"
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
ERROR_BODY_LIMIT = 64 * 1024
"""Bytes of an error answer read for its message; the rest is not needed."""
DEFAULT_MAX_CONNECTIONS = 32

_LIVE: weakref.WeakSet[HTTPReranker] = weakref.WeakSet()
"""Every reranker alive in this process, so a forked child can reset them (weakly held: never kept alive)."""


def _reset_after_fork() -> None:
    for reranker in list(_LIVE):
        reranker._after_fork_in_child()


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=_reset_after_fork)


@dataclass
class _Part:
    """One answered request: scores for the documents `offset .. offset + n` of the caller's list."""

    offset: int
    parsed: ParsedResponse
    request_id: str | None


@dataclass
class _Answer:
    """A complete (or capped) read of one HTTP answer."""

    status_code: int
    headers: httpx.Headers
    content: bytes
    oversized: bool = False
    """The body went past the size cap; `content` holds only its start."""
    undecodable: str | None = None
    """Why the body's content-encoding could not be decoded, if it could not."""

    @cached_property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300


@dataclass
class _Step:
    """What to do after a failed attempt: wait `delay`, then send again (or send the two halves)."""

    delay: float | None
    """None: send again at once (no retry was spent)."""
    split: bool
    retries: int
    """Retries spent so far, carried over to the halves of a split batch."""


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
        base_url: str | Sequence[str] | None = None,
        timeout: float = 30.0,
        max_retries: int = 2,
        max_documents_per_request: int | None = None,
        max_concurrency: int = 4,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        max_retry_after: float = DEFAULT_MAX_RETRY_AFTER,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
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
        self.timeout = _bounded_float("timeout", timeout, self.provider, MAX_TIMEOUT)
        self.max_concurrency = setting_int(
            "max_concurrency", max_concurrency, minimum=1, maximum=MAX_CONCURRENCY, provider=self.provider
        )
        self.max_connections = setting_int(
            "max_connections", max_connections, minimum=1, maximum=MAX_CONCURRENCY, provider=self.provider
        )
        self.max_response_bytes = setting_int(
            "max_response_bytes", max_response_bytes, minimum=1, provider=self.provider
        )
        self.max_documents_per_request = (
            self.dialect.max_documents_for(self.model)
            if max_documents_per_request is None
            else setting_int("max_documents_per_request", max_documents_per_request, minimum=1, provider=self.provider)
        )
        try:
            self.retry_policy = RetryPolicy(max_retries=max_retries, max_retry_after=max_retry_after)
        except ValueError as exc:
            raise ConfigurationError(str(exc), provider=self.provider) from None

        key = _clean_key(api_key, "api_key", self.provider)
        if key is None and self.dialect.api_key_env:
            key = _clean_key(os.environ.get(self.dialect.api_key_env), self.dialect.api_key_env, self.provider)
        if key is None and self.dialect.requires_api_key:
            raise ConfigurationError(
                f"no API key for provider {self.provider!r}",
                provider=self.provider,
                hint=f"Pass api_key=... or set the {self.dialect.api_key_env} environment variable",
            )
        self._api_key = SecretStr(key) if key else None
        # Lower-cased, so a caller's header replaces ours instead of going out next to it.
        self._extra_headers = _check_headers(headers, self.provider)
        cloud_auth = self.dialect.request_auth(self.options, key)  # first: it may resolve the region or project
        default_base = self.dialect.default_base_url_for(key)
        self.base_urls = [_resolve_base_url(base, default_base, self.provider) for base in _replica_list(base_url)]
        self.base_url = self.base_urls[0]
        urls = [httpx.URL(self.dialect.url(base, self.options, model=self.model)) for base in self.base_urls]
        secret_headers = [v for k, v in self._extra_headers.items() if looks_secret(k)]
        credentials = [secret for url in urls for secret in basic_credentials(url.username, url.password)]
        self._scrub = Scrubber([key, *credentials, *secret_headers])
        LOG_SCRUBBING.scrubbers.add(self._scrub)
        credential_scrubbing = getattr(cloud_auth, "credential_scrubbing", None)
        if isinstance(credential_scrubbing, CredentialScrubbing):
            credential_scrubbing.follow(self._scrub)  # a token the server echoes back stays out of our errors
        self._replicas = Replicas([self._replica(url, cloud_auth) for url in urls])
        self.urls = [str(replica.url) for replica in self._replicas.replicas]
        self.url = self.urls[0]
        self._request_headers = self._build_headers()

        self._pool = ClientPool(self.max_connections, http_client=http_client, async_http_client=async_http_client)
        self._in_flight = InFlightLimit(self.max_connections)
        _LIVE.add(self)

    def _replica(self, url: httpx.URL, cloud_auth: httpx.Auth | None) -> Replica:
        # Credentials in the URL go out as a header, so the URL that httpx logs carries no password.
        userinfo = httpx.BasicAuth(url.username, url.password) if url.username or url.password else None
        bare = url.copy_with(username=None, password=None) if userinfo else url
        return Replica(url=bare, shown=self._scrub(str(bare)), auth=cloud_auth or userinfo)

    def _after_fork_in_child(self) -> None:
        """In a forked child: forget the parent's pools and slots, and build fresh ones on next use: the pooled
        sockets are the parent's too, so sharing them would cross answers between the processes."""
        self._pool.after_fork_in_child()
        self._in_flight = InFlightLimit(self.max_connections)  # slots held by the parent's calls never come back
        self._replicas.after_fork_in_child()

    @property
    def scoring_signature(self) -> str:
        # The endpoint too: two self-hosted servers may serve different models under one (or no) model name.
        options = json.dumps(self.options, sort_keys=True, default=str)
        endpoints = " ".join(sorted(self._scrub(url) for url in self.urls))
        return "\x00".join((super().scoring_signature, endpoints, options))

    def scored_content(self, document: Document) -> str:
        # Exactly what goes on the wire for this document (the dialect decides), for the score cache's key.
        payload = self.dialect.documents_payload([document], self.options)[0]
        return (
            payload
            if isinstance(payload, str)
            else encode_json(payload, provider=self.provider, sort_keys=True, where="document")
        )

    @property
    def max_retries(self) -> int:
        return self.retry_policy.max_retries

    def __repr__(self) -> str:
        return (
            f"HTTPReranker(provider={self.provider!r}, model={self.model!r}, "
            f"base_url={self._shown_base_url()!r}, timeout={self.timeout:g}, max_retries={self.max_retries})"
        )

    def _shown_base_url(self) -> str | list[str]:
        shown = [self._scrub(base) for base in self.base_urls]
        return shown[0] if len(shown) == 1 else shown

    # -- scoring ----------------------------------------------------------------------------------------------

    def _score(self, query: str, documents: list[Document], top_n: int | None) -> Scores:
        return self._scored(query, documents, top_n, None)

    async def _ascore(self, query: str, documents: list[Document], top_n: int | None) -> Scores:
        return await self._ascored(query, documents, top_n, None)

    @property
    def accepts_instruction(self) -> bool:
        return self.dialect.instruction_field is not None

    def _score_instructed(self, query: str, documents: list[Document], top_n: int | None, instruction: str) -> Scores:
        return self._scored(query, documents, top_n, instruction)

    async def _ascore_instructed(
        self, query: str, documents: list[Document], top_n: int | None, instruction: str
    ) -> Scores:
        return await self._ascored(query, documents, top_n, instruction)

    def _scored(self, query: str, documents: list[Document], top_n: int | None, instruction: str | None) -> Scores:
        self._refuse_to_wait_on_own_loop()
        with self._pool.sync_client() as client:
            spans = self._spans(len(documents))
            gate = threading.BoundedSemaphore(self.max_concurrency)
            if len(spans) == 1:
                return self._merge(self._score_span(client, gate, query, documents, 0, top_n, 0, instruction))
            failed = threading.Event()

            def batch(start: int, end: int) -> list[_Part]:
                if failed.is_set():  # the call is already lost: send nothing more
                    return []
                try:
                    return self._score_span(client, gate, query, documents[start:end], start, top_n, 0, instruction)
                except BaseException:
                    failed.set()
                    raise

            parts: list[_Part] = []
            with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(spans))) as pool:
                # A batch is skipped only after another failed, and that failure is raised here: nothing is lost.
                batch = tracing.in_this_context(batch)
                for job in [pool.submit(batch, start, end) for start, end in spans]:
                    parts += job.result()
            return self._merge(parts)

    async def _ascored(
        self, query: str, documents: list[Document], top_n: int | None, instruction: str | None
    ) -> Scores:
        async with self._pool.async_clients() as clients:
            gate = asyncio.Semaphore(self.max_concurrency)
            jobs = [
                self._ascore_span(clients, gate, query, documents[a:b], a, top_n, 0, instruction)
                for a, b in self._spans(len(documents))
            ]
            return self._merge(await _gather(jobs))

    def _refuse_to_wait_on_own_loop(self) -> None:
        """A sync call on an event loop's thread, while that loop's own `arerank` calls hold or await every
        connection slot, would wait for slots only the blocked loop can free: refuse at once instead of hanging."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # the usual case: no loop on this thread
            return
        if self._in_flight.starves(loop):
            raise ConfigurationError(
                "rerank() was called on the thread of a running event loop whose own arerank() calls hold or wait "
                f"for all of this reranker's connections (max_connections={self.max_connections}); waiting for one "
                "would block the loop that has to free it",
                provider=self.provider,
                hint="In async code use `await reranker.arerank(...)`; or run the sync call in a worker thread "
                "(`await asyncio.to_thread(reranker.rerank, ...)`)",
            )

    def _spans(self, n: int) -> list[tuple[int, int]]:
        size = self.max_documents_per_request or n
        return [(start, min(start + size, n)) for start in range(0, n, size)]

    def _score_span(
        self,
        client: httpx.Client,
        gate: threading.BoundedSemaphore,
        query: str,
        documents: list[Document],
        offset: int,
        top_n: int | None,
        retries: int,
        instruction: str | None = None,
        avoid: frozenset[Replica] = frozenset(),
    ) -> list[_Part]:
        """One batch with its retries; split in halves when the provider finds it too large, or after a timeout
        or a 5xx (a smaller retry is likelier to pass, and a deterministic failure is narrowed to its document).
        Retries and halves keep away from the replicas in `avoid`, those this batch already failed on, while
        others are usable."""
        content, batch_top_n = self._body(query, documents, top_n, instruction)
        while True:
            with gate:
                answer, replica = self._attempt(client, content, len(documents), avoid)
            step = self._outcome(answer, retries, len(documents), offset, batch_top_n, replica)
            if isinstance(step, _Part):
                return [step]
            avoid |= {replica}
            if step.delay is not None:
                self.retry_policy.sleep(step.delay)
            retries = step.retries
            if step.split:
                break
        half = len(documents) // 2
        with ThreadPoolExecutor(max_workers=1) as helper:  # both halves at once, as the whole batch was
            first = helper.submit(
                tracing.in_this_context(self._score_span),
                client,
                gate,
                query,
                documents[:half],
                offset,
                top_n,
                retries,
                instruction,
                avoid,
            )
            second = self._score_span(
                client, gate, query, documents[half:], offset + half, top_n, retries, instruction, avoid
            )
            return first.result() + second

    async def _ascore_span(
        self,
        clients: list[httpx.AsyncClient],
        gate: asyncio.Semaphore,
        query: str,
        documents: list[Document],
        offset: int,
        top_n: int | None,
        retries: int,
        instruction: str | None = None,
        avoid: frozenset[Replica] = frozenset(),
    ) -> list[_Part]:
        content, batch_top_n = self._body(query, documents, top_n, instruction)
        while True:
            async with gate:
                answer, replica = await self._aattempt(clients, content, len(documents), avoid)
            step = self._outcome(answer, retries, len(documents), offset, batch_top_n, replica)
            if isinstance(step, _Part):
                return [step]
            avoid |= {replica}
            if step.delay is not None:
                await self.retry_policy.asleep(step.delay)
            retries = step.retries
            if step.split:
                break
        half = len(documents) // 2
        return await _gather(
            [
                self._ascore_span(clients, gate, query, documents[:half], offset, top_n, retries, instruction, avoid),
                self._ascore_span(
                    clients, gate, query, documents[half:], offset + half, top_n, retries, instruction, avoid
                ),
            ]
        )

    # -- one attempt ------------------------------------------------------------------------------------------

    def _attempt(
        self, client: httpx.Client, content: bytes, n_documents: int, avoid: frozenset[Replica]
    ) -> tuple[_Answer | httpx.TransportError, Replica]:
        """Send once to the least busy replica (not one in `avoid`, where another will do) and read the whole answer.
        The wait for a free slot comes first and is not timed."""
        with (
            self._in_flight.hold(),
            self._replicas.use(avoid) as replica,
            tracing.request_span(self.provider, replica.shown, n_documents) as span,
        ):
            started = time.monotonic()
            answer = self._send(client, replica, content)
            self._replicas.report(replica, _healthy(answer), time.monotonic() - started)
            span.answered(*_traced_outcome(answer))
            return answer, replica

    def _send(self, client: httpx.Client, replica: Replica, content: bytes) -> _Answer | httpx.TransportError:
        with attempt_deadline(self.timeout) as deadline:
            try:
                request = client.build_request(
                    "POST", replica.url, content=content, headers=self._request_headers, timeout=self.timeout
                )
                response = client.send(request, stream=True, follow_redirects=False, **_auth_argument(replica))
                try:
                    return self._read(response, response.iter_bytes(), deadline)
                finally:
                    response.close()
            except httpx.TransportError as exc:
                return exc
            except RuntimeError:
                if client.is_closed:  # only a client passed in can be closed under a call
                    return _closed_client()
                raise

    async def _aattempt(
        self, clients: list[httpx.AsyncClient], content: bytes, n_documents: int, avoid: frozenset[Replica]
    ) -> tuple[_Answer | httpx.TransportError, Replica]:
        async with self._in_flight.ahold() as slot:
            client = clients[slot // ASYNC_POOL_SHARD % len(clients)]  # each slot has a connection of its own
            with (
                self._replicas.use(avoid) as replica,
                tracing.request_span(self.provider, replica.shown, n_documents) as span,
            ):
                started = time.monotonic()
                answer = await self._asend(client, replica, content)
                self._replicas.report(replica, _healthy(answer), time.monotonic() - started)
                span.answered(*_traced_outcome(answer))
                return answer, replica

    async def _asend(
        self, client: httpx.AsyncClient, replica: Replica, content: bytes
    ) -> _Answer | httpx.TransportError:
        try:
            async with asyncio.timeout(self.timeout):  # the whole attempt, slow-drip bodies included
                request = client.build_request(
                    "POST", replica.url, content=content, headers=self._request_headers, timeout=self.timeout
                )
                response = await client.send(request, stream=True, follow_redirects=False, **_auth_argument(replica))
                try:
                    return await self._aread(response)
                finally:
                    await response.aclose()
        except TimeoutError:
            return httpx.ReadTimeout(f"no complete answer within {self.timeout:g} s")
        except httpx.TransportError as exc:
            return exc
        except RuntimeError:
            if client.is_closed:
                return _closed_client()
            raise

    def _read(self, response: httpx.Response, chunks: Iterator[bytes], deadline: float) -> _Answer:
        """Read the decoded body chunk by chunk, up to the size cap and the attempt's deadline."""
        limit = self.max_response_bytes if response.is_success else min(self.max_response_bytes, ERROR_BODY_LIMIT)
        body = bytearray()
        try:
            for chunk in chunks:
                body += chunk
                if len(body) > limit:
                    return _Answer(response.status_code, response.headers, bytes(body[:limit]), oversized=True)
                if time.monotonic() > deadline:  # a body trickling in, each piece inside the read timeout
                    raise httpx.ReadTimeout(f"the body was still arriving after {self.timeout:g} s")
        except httpx.DecodingError as exc:
            return _Answer(response.status_code, response.headers, bytes(body), undecodable=self._scrub(str(exc)))
        return _Answer(response.status_code, response.headers, bytes(body))

    async def _aread(self, response: httpx.Response) -> _Answer:
        limit = self.max_response_bytes if response.is_success else min(self.max_response_bytes, ERROR_BODY_LIMIT)
        body = bytearray()
        try:
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > limit:
                    return _Answer(response.status_code, response.headers, bytes(body[:limit]), oversized=True)
        except httpx.DecodingError as exc:
            return _Answer(response.status_code, response.headers, bytes(body), undecodable=self._scrub(str(exc)))
        return _Answer(response.status_code, response.headers, bytes(body))

    def _outcome(
        self,
        answer: _Answer | httpx.TransportError,
        retries: int,
        n_documents: int,
        offset: int,
        batch_top_n: int | None,
        replica: Replica,
    ) -> _Part | _Step:
        """The parsed part of a success, else what to do next; raises once retries are spent."""
        if isinstance(answer, httpx.TransportError):
            delay = self.retry_policy.delay(retries, None, None)
            if delay is None:
                raise self._transport_error(answer, retries + 1, replica)
            self._log_retry(delay, retries, _describe_exception(answer, self._scrub))
            split = n_documents > 1 and isinstance(answer, httpx.TimeoutException)
            if split:
                self._log_split(n_documents, "a timeout")
            return _Step(delay, split=split, retries=retries + 1)
        if answer.is_success:
            return self._parse(answer, n_documents, offset, batch_top_n)
        if n_documents > 1 and self.dialect.is_batch_too_large(answer.status_code, answer.text):
            self._log_split(n_documents, f"HTTP {answer.status_code}")
            return _Step(None, split=True, retries=retries)  # not a retry: the provider told us what to change
        delay = self.retry_policy.delay(retries, answer.status_code, answer.headers)
        if delay is None:
            raise self._status_error(answer, retries + 1)
        self._log_retry(delay, retries, describe_response(answer, self._scrub))
        split = n_documents > 1 and answer.status_code >= 500
        if split:
            self._log_split(n_documents, f"HTTP {answer.status_code}")
        return _Step(delay, split=split, retries=retries + 1)

    # -- wire -------------------------------------------------------------------------------------------------

    def _body(
        self, query: str, documents: list[Document], top_n: int | None, instruction: str | None = None
    ) -> tuple[bytes, int | None]:
        # Per-batch top_n is safe: the global top n is contained in the union of every batch's top n.
        batch_top_n = min(top_n, len(documents)) if top_n is not None and self.dialect.sends_top_n else None
        options = self.dialect.with_instruction(self.options, instruction)
        body = self.dialect.build_body(query, documents, model=self.model, top_n=batch_top_n, options=options)
        # Metadata may hold dates and the like (sent as str()); the provider only sees it, results keep originals.
        return body_bytes(body, provider=self.provider), batch_top_n

    def _build_headers(self) -> dict[str, str]:
        key = self._api_key.get_secret_value() if self._api_key else None
        headers = {"content-type": "application/json", "accept": "application/json", "user-agent": USER_AGENT}
        headers.update((name.lower(), value) for name, value in self.dialect.headers(key).items())
        headers.update(self._extra_headers)
        return headers

    def _scrubbed(self, text: str | None) -> str | None:
        return self._scrub(text) if text else text

    def _parse(self, answer: _Answer, n_documents: int, offset: int, batch_top_n: int | None) -> _Part:
        header_id = self._scrubbed(request_id_from(answer.headers))

        def fail(message: str, request_id: str | None = header_id) -> RerankError:
            return format_error(
                message, provider=self.provider, response=answer, request_id=request_id, scrub=self._scrub
            )

        if answer.oversized:
            raise fail(f"the response is larger than max_response_bytes={self.max_response_bytes}")
        if answer.undecodable is not None:
            encoding = answer.headers.get("content-encoding", "?")
            raise fail(f"the response body could not be decoded (content-encoding {encoding}): {answer.undecodable}")
        # Errors are raised outside the `except` blocks, so none carries the original exception (whose text may
        # hold what a provider echoed) as its __context__.
        error: RerankError | None = None
        try:
            payload = json.loads(answer.content)
        except (ValueError, RecursionError) as exc:
            kind = answer.headers.get("content-type", "no content-type")
            reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
            error = fail(f"response is not valid JSON ({kind}; {reason}): {truncate(self._scrub(answer.text), 120)!r}")
        if error is not None:
            raise error
        try:
            parsed = self.dialect.parse(payload, headers=answer.headers, n_documents=n_documents)
        except RerankError as exc:
            error = with_context(
                exc, provider=self.provider, status_code=answer.status_code, request_id=header_id, scrub=self._scrub
            )
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, ArithmeticError, RecursionError) as exc:
            error = fail(f"unexpected response shape ({type(exc).__name__}: {truncate(self._scrub(str(exc)), 120)})")
        if error is not None:
            raise error
        request_id = self._scrubbed(parsed.request_id) or header_id
        expected = n_documents if batch_top_n is None else batch_top_n
        if len(parsed.scores) < expected:
            asked = "all of them" if batch_top_n is None else f"top_n={batch_top_n}"
            raise fail(
                f"the provider returned {len(parsed.scores)} scores for {n_documents} documents ({asked})", request_id
            )
        return _Part(offset=offset, parsed=parsed, request_id=request_id)

    def _merge(self, parts: Sequence[_Part]) -> Scores:
        scores: dict[int, float] = {}
        usage = NO_USAGE
        model = None
        for part in parts:
            if part.offset:
                scores.update((part.offset + index, score) for index, score in part.parsed.scores)
            else:
                scores.update(part.parsed.scores)
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

    def _status_error(self, answer: _Answer, attempts: int) -> RerankError:
        return error_from_response(
            answer,
            provider=self.provider,
            attempts=attempts,
            scrub=self._scrub,
            api_key_env=self.dialect.api_key_env,
            auth_hint=self.dialect.auth_hint,
            retry_after=self.retry_policy.wait_too_long(answer.status_code, answer.headers),
            max_retry_after=self.retry_policy.max_retry_after,
        )

    def _transport_error(self, exc: httpx.TransportError, attempts: int, replica: Replica) -> RerankError:
        return error_from_exception(
            exc,
            provider=self.provider,
            url=str(replica.url),
            timeout=self.timeout,
            attempts=attempts,
            scrub=self._scrub,
        )

    def _log_retry(self, delay: float, retries_done: int, reason: str) -> None:
        tracing.count("rerank.retries")
        logger.info(
            "%s: retry %d of %d in %.2f s after %s",
            self.provider,
            retries_done + 1,
            self.max_retries,
            delay,
            reason,
        )

    def _log_split(self, size: int, reason: str) -> None:
        tracing.count("rerank.splits")
        logger.info("%s: %s for %d documents; sending the batch as two halves", self.provider, reason, size)

    # -- clients ----------------------------------------------------------------------------------------------

    def warm_up(self) -> None:
        """Open the pooled sync client now (connections themselves open on first use)."""
        with self._pool.sync_client():
            pass

    def close(self) -> None:
        """Close the pooled clients this reranker opened (never ones passed in). It reopens them if used again.

        A call still running keeps its client until it finishes; the client is closed then."""
        self._pool.close()

    async def aclose(self) -> None:
        await self._pool.aclose()


def _traced_outcome(answer: _Answer | httpx.TransportError) -> tuple[int | None, BaseException | None]:
    if isinstance(answer, _Answer):
        return answer.status_code, None
    return None, answer


async def _gather(jobs: Sequence[Any]) -> list[_Part]:
    """Run the span coroutines together; on the first failure cancel the rest (nothing is sent for a lost call)."""
    if len(jobs) == 1:
        result: list[_Part] = await jobs[0]
        return result
    tasks = [asyncio.ensure_future(job) for job in jobs]
    try:
        answers = await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    return [part for parts in answers for part in parts]


def _healthy(answer: _Answer | httpx.TransportError) -> bool | None:
    """What an attempt says of its replica's health: no answer or a 5xx counts against it; a 429 says nothing
    (the server is up, only busy); anything else is an answer from a working server."""
    if isinstance(answer, httpx.TransportError):
        return False
    if answer.status_code == 429:
        return None
    return answer.status_code < 500


def _auth_argument(replica: Replica) -> dict[str, httpx.Auth]:
    return {"auth": replica.auth} if replica.auth is not None else {}


def _replica_list(base_url: str | Sequence[str] | None) -> list[str | None]:
    """The base URLs of the deployment's replicas: one URL, or a list of them (None: the provider's default)."""
    if base_url is None or isinstance(base_url, str):
        return [base_url]
    if not isinstance(base_url, Sequence) or not base_url:
        raise ConfigurationError(
            f"base_url must be a URL or a non-empty list of the replicas' URLs, not {base_url!r}",
            hint='e.g. base_url=["http://tei-0:8080", "http://tei-1:8080"]',
        )
    for item in base_url:
        if not isinstance(item, str) or not item:
            raise ConfigurationError(f"each base_url in the list must be a URL string, not {item!r}")
    if len(set(base_url)) != len(base_url):
        raise ConfigurationError("base_url lists a replica twice", hint="Name each replica once")
    return list(base_url)


def _closed_client() -> httpx.TransportError:
    return httpx.TransportError("the httpx client passed in was closed during the call")


def _clean_key(key: object, source: str, provider: str) -> str | None:
    """Surrounding whitespace (a pasted newline) is dropped; anything else a header cannot carry is refused,
    without echoing the key."""
    if key is None:
        return None
    if not isinstance(key, str):
        raise ConfigurationError(f"{source} must be a str, not {type(key).__name__}", provider=provider)
    key = key.strip()
    if not key:
        return None
    if not (key.isascii() and key.isprintable()):
        raise ConfigurationError(
            f"the API key from {source} contains a control, non-ASCII or invisible (zero-width) character",
            provider=provider,
            hint="Copy the key again from the provider's console; it is not shown here",
        )
    return key


def _check_headers(headers: object, provider: str) -> dict[str, str]:
    if headers is None:
        return {}
    if not isinstance(headers, Mapping):
        raise ConfigurationError(
            f"headers must be a mapping of header names to str values, not {type(headers).__name__}",
            provider=provider,
        )
    checked: dict[str, str] = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise ConfigurationError(
                f"headers: {name!r} is not a valid HTTP header name",
                provider=provider,
                hint="A header name is ASCII letters, digits and !#$%&'*+-.^_`|~, with no spaces or colons",
            )
        if not isinstance(value, str):
            raise ConfigurationError(
                f"headers[{name!r}] must be a str, not {type(value).__name__}",
                provider=provider,
                hint=f"Pass headers={{{name!r}: str(value)}}",
            )
        value = value.strip()
        if not (value.isascii() and value.isprintable()):
            raise ConfigurationError(  # the value may be a secret: never shown
                f"headers[{name!r}] contains a control, non-ASCII or invisible character",
                provider=provider,
                hint="HTTP header values are printable ASCII",
            )
        checked[name.lower()] = value
    return checked


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
    # httpx accepts any integer here; the socket layer would wrap 99999 to another port or fail raw.
    if parsed.port is not None and not 1 <= parsed.port <= 65535:
        raise ConfigurationError(
            f"base_url has port {parsed.port}, outside 1-65535",
            provider=provider,
            hint="Check the port in base_url, e.g. http://localhost:8080",
        )
    return url


def _bounded_float(name: str, value: object, provider: str, limit: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= limit:
        raise ConfigurationError(
            f"{name} must be a number of seconds > 0 and <= {limit:g}, not {value!r}", provider=provider
        )
    return float(value)


def _describe_exception(exc: Exception, scrub: Scrubber) -> str:
    return f"{type(exc).__name__}: {scrub(str(exc))}" if str(exc) else type(exc).__name__
