"""OpenTelemetry spans, read back from opentelemetry-sdk's in-memory exporter: one span per call with the GenAI
attributes, a child per HTTP request and per local batch, fallback members, cache hits, retries and errors, sync,
async and across the fan-out threads; no query or document text unless the user opts in."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from tests.support.emulator import Fault
from tests.support.fixtures import StartEmulator
from tests.support.transport import API_KEY, MODES, Mode, RecordedWaits, call, make_reranker

from rerank_core import ProviderError, load_reranker
from rerank_core.tracing import CONTENT_ENV, DURATION_METRIC

QUERY = "what is the capital of france"
DOCS = ["Paris is the capital of France.", "Berlin is in Germany.", "Lyon is a French city.", "Rome is old."]
_EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module", autouse=True)
def _provider() -> None:
    # The global provider can be set once per process; later tests only clear the exporter.
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        trace.set_tracer_provider(provider)


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], list[ReadableSpan]]]:
    monkeypatch.delenv(CONTENT_ENV, raising=False)
    _EXPORTER.clear()
    yield lambda: list(_EXPORTER.get_finished_spans())
    _EXPORTER.clear()


def calls(finished: list[ReadableSpan]) -> list[ReadableSpan]:
    return [s for s in finished if s.attributes and s.attributes.get("gen_ai.operation.name") == "rerank"]


def children(finished: list[ReadableSpan], parent: ReadableSpan, name: str) -> list[ReadableSpan]:
    return [
        s for s in finished if s.name == name and s.parent is not None and s.parent.span_id == parent.context.span_id
    ]


def all_text(span: ReadableSpan) -> str:
    parts = [span.name, repr(dict(span.attributes or {}))]
    parts += [repr(dict(e.attributes or {})) for e in span.events]
    return " ".join(parts)


@pytest.mark.parametrize("mode", MODES)
async def test_one_span_per_call_with_a_child_per_request(
    start_emulator: StartEmulator, spans: Callable[[], list[ReadableSpan]], mode: Mode
) -> None:
    emu = start_emulator("generic", api_key=API_KEY)
    with make_reranker(emu, max_documents_per_request=2) as reranker:  # two requests, side by side
        response = await call(reranker, mode, QUERY, DOCS, top_n=3)
    finished = spans()
    [span] = calls(finished)
    attributes = dict(span.attributes or {})
    assert span.name == "rerank test-model"
    assert span.kind == trace.SpanKind.CLIENT
    assert attributes["gen_ai.provider.name"] == "generic"
    assert attributes["gen_ai.request.model"] == "test-model"
    assert attributes["gen_ai.rerank.candidate.count"] == 4
    assert attributes["gen_ai.rerank.top_n"] == 3
    assert attributes["rerank.results.count"] == len(response.results) == 3
    assert attributes["rerank.dropped.count"] == 1
    assert attributes["rerank.http.requests"] == 2
    requests = children(finished, span, "POST")
    assert len(requests) == 2, "the fan-out threads keep the call as their parent"
    assert {r.attributes["http.response.status_code"] for r in requests if r.attributes} == {200}
    assert {r.attributes["gen_ai.rerank.candidate.count"] for r in requests if r.attributes} == {2}
    for each in finished:
        text = all_text(each)
        assert API_KEY not in text
        assert "Paris" not in text, "no text is recorded unless the user opts in"
        assert QUERY not in text


@pytest.mark.parametrize("mode", MODES)
async def test_retries_and_errors_are_recorded_with_their_type(
    start_emulator: StartEmulator, spans: Callable[[], list[ReadableSpan]], mode: Mode
) -> None:
    emu = start_emulator("generic", api_key=API_KEY)
    emu.fail_always(Fault(status=503, body={"error": {"message": "overloaded"}}))
    with make_reranker(emu, waits=RecordedWaits(), max_retries=1) as reranker, pytest.raises(ProviderError):
        await call(reranker, mode, QUERY, DOCS[:1])
    finished = spans()
    [span] = calls(finished)
    attributes = dict(span.attributes or {})
    assert span.status.status_code == trace.StatusCode.ERROR
    assert attributes["error.type"] == "ProviderError"
    assert attributes["http.response.status_code"] == 503
    assert attributes["rerank.retries"] == 1
    assert [e.name for e in span.events] == ["exception"]
    requests = children(finished, span, "POST")
    assert len(requests) == 2
    assert all(r.status.status_code == trace.StatusCode.ERROR for r in requests)
    assert API_KEY not in " ".join(all_text(s) for s in finished)


@pytest.mark.parametrize("mode", MODES)
async def test_the_fallback_member_that_answered_and_the_one_that_failed(
    start_emulator: StartEmulator, spans: Callable[[], list[ReadableSpan]], mode: Mode
) -> None:
    down, up = start_emulator("generic", api_key="k"), start_emulator("cohere", api_key="k")
    down.fail_always(Fault(status=401, body={"error": {"message": "bad key"}}))
    config = {
        "provider": "generic",
        "model": "m",
        "base_url": down.base_url,
        "api_key": "k",
        "max_retries": 0,
        "fallback": [{"provider": "cohere", "model": "rerank-v3.5", "base_url": up.base_url, "api_key": "k"}],
    }
    with load_reranker(config) as chain:
        await call(chain, mode, QUERY, DOCS)
    [span] = calls(spans())
    attributes = dict(span.attributes or {})
    assert attributes["rerank.fallback.member"].startswith("cohere")  # type: ignore[union-attr]
    [failed] = [e for e in span.events if e.name == "rerank.fallback.failed"]
    assert (failed.attributes or {})["error_type"] == "AuthenticationError"
    assert span.status.status_code != trace.StatusCode.ERROR


async def test_cache_hits_are_recorded(start_emulator: StartEmulator, spans: Callable[[], list[ReadableSpan]]) -> None:
    emu = start_emulator("generic", api_key="k")
    config: dict[str, Any] = {"provider": "generic", "model": "m", "base_url": emu.base_url, "api_key": "k"}
    with load_reranker(config, cache=True) as reranker:
        reranker.rerank(QUERY, DOCS)
        await reranker.arerank(QUERY, DOCS)
    first, second = calls(spans())
    assert (first.attributes or {})["rerank.cache.misses"] == 4
    assert (second.attributes or {})["rerank.cache.hits"] == 4
    assert "rerank.http.requests" not in (second.attributes or {}), "a full hit sends nothing"


@pytest.mark.parametrize("mode", MODES)
async def test_local_batches_are_children_of_the_call(
    tiny_cross_encoder: str, spans: Callable[[], list[ReadableSpan]], mode: Mode
) -> None:
    with load_reranker(f"local:{tiny_cross_encoder}", options={"engine": "torch", "batch_size": 2}) as reranker:
        await call(reranker, mode, QUERY, DOCS)
    finished = spans()
    [span] = calls(finished)
    batches = children(finished, span, "rerank batch")
    assert sorted((b.attributes or {})["rerank.batch.pairs"] for b in batches) == [2, 2]  # type: ignore[type-var]
    assert (span.attributes or {})["gen_ai.usage.input_tokens"] > 0  # type: ignore[operator]


async def test_text_only_when_the_user_opts_in(
    start_emulator: StartEmulator, spans: Callable[[], list[ReadableSpan]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CONTENT_ENV, "true")
    emu = start_emulator("generic", api_key=API_KEY)
    with make_reranker(emu) as reranker:
        response = reranker.rerank(QUERY, [{"text": t, "id": f"d{i}"} for i, t in enumerate(DOCS)], top_n=1)
    [span] = calls(spans())
    attributes = dict(span.attributes or {})
    assert attributes["openinference.span.kind"] == "RERANKER"
    assert attributes["reranker.query"] == QUERY
    assert attributes["reranker.top_k"] == 1
    assert attributes["reranker.input_documents.3.document.content"] == DOCS[3]
    assert attributes["reranker.input_documents.3.document.id"] == "d3"
    best = response.results[0]
    assert attributes["reranker.output_documents.0.document.content"] == best.document.text
    assert attributes["reranker.output_documents.0.document.score"] == best.relevance_score
    assert "reranker.output_documents.1.document.content" not in attributes


def test_calls_nest_under_the_caller_span(
    start_emulator: StartEmulator, spans: Callable[[], list[ReadableSpan]]
) -> None:
    emu = start_emulator("generic", api_key=API_KEY)
    tracer = trace.get_tracer("the-app")
    with make_reranker(emu) as reranker, tracer.start_as_current_span("retrieve and answer") as parent:
        reranker.rerank(QUERY, DOCS)
    [span] = calls(spans())
    assert span.parent is not None
    assert span.parent.span_id == parent.get_span_context().span_id


def test_spans_nest_under_a_haystack_pipeline(
    start_emulator: StartEmulator, spans: Callable[[], list[ReadableSpan]]
) -> None:
    from haystack import Document, Pipeline
    from haystack.tracing.tracer import disable_tracing, enable_tracing
    from haystack.utils import Secret
    from haystack_integrations.tracing.opentelemetry import OpenTelemetryTracer

    from haystack_integrations.components.rankers.rerank import RerankRanker

    emu = start_emulator("generic", api_key=API_KEY)
    enable_tracing(OpenTelemetryTracer(trace.get_tracer("haystack")))
    try:
        pipeline = Pipeline()
        ranker = RerankRanker(
            reranker={"provider": "generic", "model": "m", "base_url": emu.base_url},
            api_key=Secret.from_token(API_KEY),
        )
        pipeline.add_component("ranker", ranker)
        pipeline.run({"ranker": {"query": QUERY, "documents": [Document(content=t) for t in DOCS]}})
    finally:
        disable_tracing()
    finished = spans()
    [span] = calls(finished)
    by_id = {s.context.span_id: s for s in finished if s.context is not None}
    assert span.parent is not None
    assert by_id[span.parent.span_id].name == "haystack.component.run"


def test_nothing_is_traced_without_opentelemetry(
    start_emulator: StartEmulator, spans: Callable[[], list[ReadableSpan]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from rerank_core import tracing

    monkeypatch.setattr(tracing, "_trace", None)  # what `_api()` remembers when the import failed
    emu = start_emulator("generic", api_key=API_KEY)
    with make_reranker(emu, max_documents_per_request=2) as reranker:
        assert len(reranker.rerank(QUERY, DOCS).results) == 4
    assert spans() == []


_METRICS = InMemoryMetricReader()


def durations() -> list[Any]:
    """The data points of the call-duration histogram read so far."""
    data = _METRICS.get_metrics_data()
    points: list[Any] = []
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == DURATION_METRIC:
                    assert metric.unit == "s"
                    points += list(metric.data.data_points)
    return points


@pytest.mark.parametrize("mode", MODES)
async def test_every_call_records_its_duration(start_emulator: StartEmulator, mode: Mode) -> None:
    if not isinstance(metrics.get_meter_provider(), MeterProvider):
        metrics.set_meter_provider(MeterProvider(metric_readers=[_METRICS]))
    emu = start_emulator("generic", api_key=API_KEY)
    before = {tuple(sorted(p.attributes.items())): p.count for p in durations()}
    with make_reranker(emu, waits=RecordedWaits(), max_retries=0) as reranker:
        await call(reranker, mode, QUERY, DOCS)
        await call(reranker, mode, QUERY, DOCS)
        emu.fail_next(Fault(status=500))
        with pytest.raises(ProviderError):
            await call(reranker, mode, QUERY, DOCS)
    ok = (
        ("gen_ai.operation.name", "rerank"),
        ("gen_ai.provider.name", "generic"),
        ("gen_ai.request.model", "test-model"),
    )
    failed = tuple(sorted((*ok, ("error.type", "ProviderError"))))
    after = {tuple(sorted(p.attributes.items())): p for p in durations()}
    assert after[tuple(sorted(ok))].count - before.get(tuple(sorted(ok)), 0) == 2
    assert after[failed].count - before.get(failed, 0) == 1
    assert after[tuple(sorted(ok))].sum > 0
