"""Each cheap path on the hot path of a call decides exactly what the full checks decide: plain-string documents
built without validation, the whole-list check of a provider's results, one pass over the headers for a request
id, the shared empty usage, and calls that make no span while no tracer provider is set."""

from __future__ import annotations

import copy
import json
import math
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest

from rerank_core import Document, InvalidInputError, ResponseFormatError
from rerank_core.dialects._parse import parse_results
from rerank_core.http.error_mapping import request_id_from
from rerank_core.models import NO_USAGE, DocumentInput, Usage, to_documents

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("text", ["plain ascii", "non-ASCII: café – μg/ml 😀", ""])
def test_a_plain_string_document_is_indistinguishable_from_one_built_by_its_constructor(text: str) -> None:
    (built,) = to_documents([text])
    made = Document(text)
    assert type(built) is Document
    assert built == made
    assert repr(built) == repr(made)
    assert built.model_dump() == made.model_dump()
    assert built.model_dump_json() == made.model_dump_json()
    assert built.model_fields_set == made.model_fields_set == {"text"}
    assert pickle.loads(pickle.dumps(built)) == made
    assert copy.deepcopy(built) == made
    assert copy.copy(built) == made
    assert built.model_copy(update={"id": 7}).id == 7
    assert built.id is None
    with pytest.raises(Exception, match="frozen"):
        built.text = "changed"
    built.metadata["k"] = 1  # each document has a metadata dict of its own
    assert to_documents([text])[0].metadata == {}


def test_a_string_with_a_lone_surrogate_still_names_its_position() -> None:
    with pytest.raises(InvalidInputError, match=r"documents\[1\] holds an unpaired surrogate \(U\+D800\)"):
        to_documents(["fine", "bad \ud800 text"])


def test_strings_mixed_with_documents_and_mappings_keep_their_ids_and_metadata() -> None:
    given: list[DocumentInput] = ["a", Document("b", id=2), {"text": "c", "id": "x", "metadata": {"m": 1}}]
    built = to_documents(given)
    assert [(d.text, d.id, d.metadata) for d in built] == [("a", None, {}), ("b", 2, {}), ("c", "x", {"m": 1})]
    assert built[1] is given[1]


def _results(*items: Any) -> dict[str, Any]:
    return {"results": list(items)}


def _result(index: Any, score: Any) -> dict[str, Any]:
    return {"index": index, "relevance_score": score}


def test_the_common_shape_keeps_the_order_the_provider_sent() -> None:
    payload = _results(_result(2, 0.9), _result(0, 0.5), _result(1, -3.0))
    assert parse_results(payload, n_documents=3, provider="p") == [(2, 0.9), (0, 0.5), (1, -3.0)]


def test_finite_scores_whose_sum_overflows_are_accepted() -> None:
    payload = _results(_result(0, 1e308), _result(1, 1e308))
    assert parse_results(payload, n_documents=2, provider="p") == [(0, 1e308), (1, 1e308)]


def test_other_spellings_of_the_score_and_integer_scores_are_read_one_by_one() -> None:
    payload = _results({"index": 0, "score": 1}, _result(1, 0.5), {"index": 2, "logit": -1.5})
    assert parse_results(payload, n_documents=3, provider="p") == [(0, 1.0), (1, 0.5), (2, -1.5)]


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ([_result(0, 0.1), _result(0, 0.2)], "index 0 appears more than once"),
        ([_result(0, 0.1), _result(2, 0.2)], "index 2, outside the 2 documents"),
        ([_result(-1, 0.1), _result(1, 0.2)], "index -1, outside"),
        ([_result(True, 0.1), _result(1, 0.2)], "result 0 has no integer index"),
        ([_result(0.0, 0.1), _result(1, 0.2)], "result 0 has no integer index"),
        ([_result(0, math.nan), _result(1, 0.2)], "non-finite score"),
        ([_result(0, 0.1), _result(1, -math.inf)], "non-finite score"),
        ([_result(0, 0.1), [1, 0.2]], "result 1 is not an object"),
        ([_result(0, 0.1), {"index": 1}], "result 1 has no score"),
    ],
)
def test_a_list_off_the_common_shape_gets_the_error_of_the_full_checks(items: list[Any], message: str) -> None:
    with pytest.raises(ResponseFormatError, match=message):
        parse_results(_results(*items), n_documents=2, provider="p")


def test_an_empty_result_list_is_no_scores() -> None:
    assert parse_results(_results(), n_documents=2, provider="p") == []


@pytest.mark.parametrize(
    "headers",
    [
        httpx.Headers([("CF-Ray", "ray-1"), ("Content-Type", "application/json"), ("X-Request-ID", "req-1")]),
        {"cf-ray": "ray-1", "X-Request-Id": "req-1"},
    ],
)
def test_the_request_id_follows_the_header_order_of_preference_in_any_case(headers: Any) -> None:
    assert request_id_from(headers) == "req-1"  # x-request-id is preferred to cf-ray wherever it comes


def test_an_empty_request_id_header_gives_way_to_the_next_and_then_to_the_body() -> None:
    assert request_id_from(httpx.Headers({"x-request-id": "", "request-id": "r2"})) == "r2"
    assert request_id_from(httpx.Headers({"x-request-id": ""}), {"request_id": "body-id"}) == "body-id"
    assert request_id_from(httpx.Headers({})) is None


def test_the_shared_empty_usage_adds_like_any_other() -> None:
    counted = Usage(prompt_tokens=3, search_units=1)
    assert NO_USAGE + counted == counted + NO_USAGE == counted
    assert Usage() == NO_USAGE + NO_USAGE
    assert counted + Usage() == counted
    assert Usage() + counted == counted
    assert counted + counted == Usage(prompt_tokens=6, search_units=2)


_NO_TRACER_PROVIDER = textwrap.dedent(
    """
    import json
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from rerank_core import Reranker
    from rerank_core.base import Scores

    class Lengths(Reranker):
        provider = "lengths"
        model = "m"

        def _score(self, query, documents, top_n):
            return Scores({i: float(len(d.text)) for i, d in enumerate(documents)}, self.provider, self.model)

        async def _ascore(self, query, documents, top_n):
            return self._score(query, documents, top_n)

    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    started = []
    real = trace.ProxyTracer.start_as_current_span
    trace.ProxyTracer.start_as_current_span = lambda self, *a, **k: started.append(a) or real(self, *a, **k)
    order = [r.index for r in Lengths().rerank("q", ["aa", "a", "aaa"]).results]
    points = [p for rm in reader.get_metrics_data().resource_metrics for sm in rm.scope_metrics
              for m in sm.metrics for p in m.data.data_points]
    before = {"order": order, "spans_started": len(started), "durations": sum(p.count for p in points)}

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    Lengths().rerank("q", ["aa", "a"])
    after = [s.name for s in exporter.get_finished_spans()]
    print(json.dumps({"before": before, "after": after}))
    """
)


def test_without_a_tracer_provider_a_call_makes_no_span_but_records_its_duration(tmp_path: Path) -> None:
    script = tmp_path / "no_tracer_provider.py"
    script.write_text(_NO_TRACER_PROVIDER)
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["before"] == {"order": [2, 0, 1], "spans_started": 0, "durations": 1}
    assert seen["after"] == ["rerank m"]  # a tracer provider set later is followed at once
