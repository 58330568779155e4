"""OpenTelemetry spans for reranking, when `opentelemetry-api` is installed (the `[otel]` extra).

One span per `rerank`/`arerank` call, with the GenAI attributes (`gen_ai.operation.name = "rerank"`, provider,
model, candidate count, top_n, usage, request ids) and the ones only a reranking client knows (results, dropped,
cache hits, the fallback member that answered, retries, splits); a child span per HTTP request and per local
batch. Spans join whatever span is current, so they nest under LangChain's, LlamaIndex's and Haystack's own when
those export to OpenTelemetry. Query and document text are recorded only when `RERANK_TRACE_CONTENT` is true,
then as OpenInference's `reranker.*` attributes. Every call's duration also goes to the GenAI histogram
`gen_ai.client.operation.duration` (seconds), for whatever meter provider the application sets. Without
opentelemetry-api every function here returns at once.
"""

from __future__ import annotations

import contextvars
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from rerank_core.base import Reranker
    from rerank_core.models import Document, RerankResponse

TRACER_NAME = "rerank_core"
CONTENT_ENV = "RERANK_TRACE_CONTENT"
DURATION_METRIC = "gen_ai.client.operation.duration"
_MISSING: Any = object()
_trace: Any = _MISSING
_duration: Any = _MISSING
P = ParamSpec("P")
R = TypeVar("R")


def _api() -> Any:
    """`opentelemetry.trace`, or None when it is not installed (looked up once)."""
    global _trace
    if _trace is _MISSING:
        try:
            from opentelemetry import trace as api
        except ImportError:
            _trace = None
        else:
            _trace = api
    return _trace


def _duration_histogram() -> Any:
    """The call-duration histogram (created once; the API's proxy meter follows a provider set later)."""
    global _duration
    if _duration is _MISSING:
        from opentelemetry import metrics

        _duration = metrics.get_meter(TRACER_NAME).create_histogram(
            DURATION_METRIC, unit="s", description="Duration of GenAI operations (rerank calls)"
        )
    return _duration


def record_content() -> bool:
    """Whether query and document text may go into spans: off unless the user opts in."""
    return os.environ.get(CONTENT_ENV, "").strip().lower() in ("1", "true", "yes", "on")


class CallTrace:
    """The span of one call, and what its inner layers report to it (from any thread of the call)."""

    def __init__(self, span: Any) -> None:
        self.span = span
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] = self._counts.get(name, 0) + n

    def flush(self) -> None:
        with self._lock:
            counts = dict(self._counts)
        for name, value in counts.items():
            self.span.set_attribute(name, value)


_current: contextvars.ContextVar[CallTrace | None] = contextvars.ContextVar("rerank_call_trace", default=None)


@contextmanager
def call_span(
    reranker: Reranker, query: str, documents: Sequence[Document], top_n: int | None
) -> Iterator[CallTrace | None]:
    """The span of one public call; an error leaving it is recorded with its type, then re-raised."""
    trace = _api()
    if trace is None:
        yield None
        return
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        # No tracer provider is set yet, so every span would be a no-op one: none is made, and the call is only
        # timed for the duration histogram (a meter provider may be set without a tracer provider).
        with _timed(reranker):
            yield None
        return
    model = reranker.model
    tracer = trace.get_tracer(TRACER_NAME)
    with (
        tracer.start_as_current_span(
            f"rerank {model}" if model else "rerank",
            kind=trace.SpanKind.CLIENT,
            record_exception=False,
            set_status_on_exception=False,
        ) as span,
        _timed(reranker),
    ):
        call = CallTrace(span)
        token = _current.set(call)
        try:
            if span.is_recording():
                _request_attributes(span, reranker, query, documents, top_n)
            yield call
        except BaseException as error:
            if span.is_recording():
                _record_error(trace, span, error)
            raise
        finally:
            _current.reset(token)
            if span.is_recording():
                call.flush()


@contextmanager
def _timed(reranker: Reranker) -> Iterator[None]:
    started = time.perf_counter()
    error_type: str | None = None
    try:
        yield
    except BaseException as error:
        error_type = type(error).__qualname__
        raise
    finally:
        _record_duration(reranker, time.perf_counter() - started, error_type)


def _record_duration(reranker: Reranker, seconds: float, error_type: str | None) -> None:
    attributes = {"gen_ai.operation.name": "rerank", "gen_ai.provider.name": reranker.provider}
    if reranker.model:
        attributes["gen_ai.request.model"] = reranker.model
    if error_type is not None:
        attributes["error.type"] = error_type
    _duration_histogram().record(seconds, attributes)


def record_response(call: CallTrace | None, response: RerankResponse) -> None:
    if call is None or not call.span.is_recording():
        return
    span = call.span
    span.set_attribute("gen_ai.response.model", response.model or "")
    span.set_attribute("rerank.results.count", len(response.results))
    span.set_attribute("rerank.dropped.count", len(response.dropped))
    span.set_attribute("rerank.score_kind", response.score_kind)
    if response.passthrough:
        span.set_attribute("rerank.passthrough", True)
    usage = response.usage
    if usage.prompt_tokens is not None:
        span.set_attribute("gen_ai.usage.input_tokens", usage.prompt_tokens)
    for name in ("search_units", "rerank_units"):
        value = getattr(usage, name)
        if value is not None:
            span.set_attribute(f"rerank.usage.{name}", value)
    if response.request_ids:
        span.set_attribute("gen_ai.response.id", response.request_ids[0])
        span.set_attribute("rerank.request_ids", list(response.request_ids))
    if response.cache is not None:
        span.set_attribute("rerank.cache.hits", response.cache.hits)
        span.set_attribute("rerank.cache.misses", response.cache.misses)
    if record_content():
        for position, result in enumerate(response.results):
            prefix = f"reranker.output_documents.{position}.document"
            span.set_attribute(f"{prefix}.content", result.document.text)
            span.set_attribute(f"{prefix}.score", result.relevance_score)
            if result.document.id is not None:
                span.set_attribute(f"{prefix}.id", str(result.document.id))


def count(name: str, n: int = 1) -> None:
    """Add to a counter of the current call (retries, splits), if it is traced."""
    call = _current.get()
    if call is not None:
        call.count(name, n)


def note(name: str, value: str) -> None:
    """Set an attribute on the current call's span, if it is traced."""
    call = _current.get()
    if call is not None and call.span.is_recording():
        call.span.set_attribute(name, value)


def event(name: str, **attributes: str) -> None:
    """An event on the current call's span (a fallback member passed over or failed), if it is traced."""
    call = _current.get()
    if call is not None and call.span.is_recording():
        call.span.add_event(name, attributes)


class RequestTrace:
    """The span of one HTTP request; `answered` records the status once it is known."""

    def __init__(self, span: Any) -> None:
        self.span = span

    def answered(self, status_code: int | None, error: BaseException | None = None) -> None:
        if self.span is None or not self.span.is_recording():
            return
        if status_code is not None:
            self.span.set_attribute("http.response.status_code", status_code)
        trace = _api()
        if error is not None:
            _record_error(trace, self.span, error)
        elif status_code is not None and status_code >= 400:
            self.span.set_attribute("error.type", str(status_code))
            self.span.set_status(trace.Status(trace.StatusCode.ERROR))


@contextmanager
def request_span(provider: str, url: str, n_documents: int) -> Iterator[RequestTrace]:
    """A child span for one HTTP request. `url` must already be scrubbed of credentials."""
    trace = _api()
    if trace is None or _current.get() is None:
        yield RequestTrace(None)
        return
    parts = urlsplit(url)
    tracer = trace.get_tracer(TRACER_NAME)
    with tracer.start_as_current_span(
        "POST", kind=trace.SpanKind.CLIENT, record_exception=False, set_status_on_exception=False
    ) as span:
        if span.is_recording():
            span.set_attribute("http.request.method", "POST")
            span.set_attribute("url.full", url)
            span.set_attribute("server.address", parts.hostname or "")
            if parts.port is not None:
                span.set_attribute("server.port", parts.port)
            span.set_attribute("gen_ai.provider.name", provider)
            span.set_attribute("gen_ai.rerank.candidate.count", n_documents)
        count("rerank.http.requests")
        yield RequestTrace(span)


@contextmanager
def batch_span(provider: str, n_pairs: int) -> Iterator[None]:
    """A child span for one local batch of (query, document) pairs."""
    trace = _api()
    if trace is None or _current.get() is None:
        yield
        return
    tracer = trace.get_tracer(TRACER_NAME)
    with tracer.start_as_current_span("rerank batch", record_exception=False, set_status_on_exception=False) as span:
        if span.is_recording():
            span.set_attribute("gen_ai.provider.name", provider)
            span.set_attribute("rerank.batch.pairs", n_pairs)
        try:
            yield
        except BaseException as error:
            if span.is_recording():
                _record_error(trace, span, error)
            raise


def in_this_context(function: Callable[P, R]) -> Callable[P, R]:
    """`function`, run in the caller's context from whatever thread calls it, so worker threads' spans keep
    their parent. Each call gets its own copy: one context cannot be entered by two threads at once."""
    if _current.get() is None:
        return function
    context = contextvars.copy_context()

    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        return context.copy().run(function, *args, **kwargs)

    return run


def _request_attributes(
    span: Any, reranker: Reranker, query: str, documents: Sequence[Document], top_n: int | None
) -> None:
    span.set_attribute("gen_ai.operation.name", "rerank")
    span.set_attribute("gen_ai.provider.name", reranker.provider)
    if reranker.model:
        span.set_attribute("gen_ai.request.model", reranker.model)
    span.set_attribute("gen_ai.rerank.candidate.count", len(documents))
    if top_n is not None:
        span.set_attribute("gen_ai.rerank.top_n", top_n)
    if record_content():
        span.set_attribute("openinference.span.kind", "RERANKER")
        span.set_attribute("reranker.query", query)
        if reranker.model:
            span.set_attribute("reranker.model_name", reranker.model)
        if top_n is not None:
            span.set_attribute("reranker.top_k", top_n)
        for position, document in enumerate(documents):
            prefix = f"reranker.input_documents.{position}.document"
            span.set_attribute(f"{prefix}.content", document.text)
            if document.id is not None:
                span.set_attribute(f"{prefix}.id", str(document.id))


def _record_error(trace: Any, span: Any, error: BaseException) -> None:
    span.set_attribute("error.type", type(error).__qualname__)
    status = getattr(error, "status_code", None)
    if isinstance(status, int):
        span.set_attribute("http.response.status_code", status)
    span.record_exception(error)
    span.set_status(trace.Status(trace.StatusCode.ERROR, f"{type(error).__name__}: {error}"))
