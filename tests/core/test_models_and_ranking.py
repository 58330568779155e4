"""The normalized model, input coercion, the shared response parser and the shared ranking step."""

from __future__ import annotations

import math
import pickle

import pytest

from rerank_core import (
    Document,
    DocumentInput,
    InvalidInputError,
    Reranker,
    RerankResult,
    ResponseFormatError,
    ScoreKind,
    Scores,
    Usage,
    Window,
)
from rerank_core.base import build_response
from rerank_core.dialects._parse import parse_results
from rerank_core.errors import AuthenticationError
from rerank_core.models import to_documents


class FixedScores(Reranker):
    """A backend that returns preset scores, counting calls."""

    provider = "fixed"
    model = "fixed-v1"

    def __init__(self, scores: list[float], kind: ScoreKind = "probability") -> None:
        self.scores = scores
        self.kind = kind
        self.calls = 0

    def _score(self, query: str, documents: list[Document], top_n: int | None) -> Scores:
        self.calls += 1
        return Scores({i: self.scores[i] for i in range(len(documents))}, self.provider, self.model, self.kind)

    async def _ascore(self, query: str, documents: list[Document], top_n: int | None) -> Scores:
        return self._score(query, documents, top_n)


def test_document_accepts_positional_text_and_is_frozen() -> None:
    doc = Document("hello", id="d1", metadata={"a": 1})
    assert (doc.text, doc.id, doc.metadata) == ("hello", "d1", {"a": 1})
    with pytest.raises(ValueError, match="frozen"):
        doc.text = "other"


def test_inputs_of_every_kind_become_documents_without_mutation() -> None:
    mapping = {"text": "t", "id": 7, "metadata": {"k": "v"}, "title": "T"}
    snapshot = dict(mapping)
    docs = to_documents(["plain", Document("doc", id="x"), mapping])
    assert [d.text for d in docs] == ["plain", "doc", "t"]
    assert docs[2].id == 7
    assert docs[2].metadata == {"k": "v", "title": "T"}
    assert mapping == snapshot


@pytest.mark.parametrize(
    ("documents", "message"),
    [("just a string", "list"), ([{"title": "no text"}], r"documents\[0\]"), ([b"bytes"], "bytes")],
)
def test_bad_documents_raise_typed_error(documents: object, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        to_documents(documents)  # type: ignore[arg-type]


def test_ranking_sorts_ties_by_index_and_accounts_for_every_input() -> None:
    docs = [Document(str(i)) for i in range(5)]
    response = build_response(Scores({0: 0.2, 1: 0.9, 2: 0.9, 3: 0.1, 4: 0.5}, "p", "m"), docs, 2, 0.15)
    assert [r.index for r in response.results] == [1, 2]
    assert [(d.index, d.reason) for d in response.dropped] == [(0, "top_n"), (3, "score_threshold"), (4, "top_n")]
    assert sorted([r.index for r in response.results] + [d.index for d in response.dropped]) == list(range(5))


def test_ties_rank_by_index_whatever_order_the_scores_arrived_in() -> None:
    # Batches and providers answer in any order; the scores dict keeps arrival order. -0.0 ties with 0.0.
    docs = [Document(str(i)) for i in range(7)]
    arrived = {5: 0.5, 3: 0.0, 6: 0.5, 0: -0.0, 4: 0.9, 1: 0.5, 2: 0.9}
    response = build_response(Scores(arrived, "p", "m"), docs, None, None)
    assert [r.index for r in response.results] == [2, 4, 1, 5, 6, 0, 3]
    assert [r.relevance_score for r in response.results] == [0.9, 0.9, 0.5, 0.5, 0.5, 0.0, 0.0]


def test_results_are_the_public_models_with_their_documents_and_windows() -> None:
    docs = [Document("a", id="x", metadata={"k": 1}), Document("b")]
    window = Window(index=0, start=0, end=1, text="a")
    response = build_response(Scores({0: 0.4, 1: 0.6}, "p", "m", windows={0: window}), docs, None, 0.5)
    expected = RerankResult(index=1, relevance_score=0.6, document=docs[1], window=None)
    assert response.results == [expected]
    assert type(response.results[0]) is RerankResult
    assert response.results[0].model_fields_set == expected.model_fields_set
    assert response.results[0].document is docs[1]  # the caller's own object, not a copy
    with_window = build_response(Scores({0: 0.4, 1: 0.6}, "p", "m", windows={0: window}), docs, None, None)
    assert with_window.results[1].window == window
    assert [(d.index, d.reason) for d in response.dropped] == [(0, "score_threshold")]


def test_indices_a_provider_left_out_under_a_top_n_hint_are_dropped_for_top_n() -> None:
    docs = [Document(str(i)) for i in range(4)]
    response = build_response(Scores({2: 0.7, 0: 0.3}, "p", "m"), docs, 2, None)
    assert [r.index for r in response.results] == [2, 0]
    assert [(d.index, d.reason) for d in response.dropped] == [(1, "top_n"), (3, "top_n")]


def test_sigmoid_normalization_applies_to_logits_only() -> None:
    docs = [Document("a"), Document("b")]
    logits = build_response(Scores({0: 0.0, 1: 2.0}, "p", "m", "logit"), docs, None, None, "sigmoid")
    assert logits.score_kind == "probability"
    assert [round(r.relevance_score, 6) for r in logits.results] == [round(1 / (1 + math.exp(-2)), 6), 0.5]
    probabilities = build_response(Scores({0: 0.3, 1: 0.6}, "p", "m", "probability"), docs, None, None, "sigmoid")
    assert [r.relevance_score for r in probabilities.results] == [0.6, 0.3]


def test_passthrough_ignores_the_threshold_so_the_pipeline_keeps_answering() -> None:
    docs = [Document("a"), Document("b"), Document("c")]
    response = build_response(Scores({0: 0.0, 1: 0.0, 2: 0.0}, "p", None, passthrough=True), docs, 2, 0.5)
    assert response.passthrough
    assert [r.index for r in response.results] == [0, 1]
    assert [(d.index, d.reason) for d in response.dropped] == [(2, "top_n")]


async def test_base_class_short_circuits_empty_input_sync_and_async() -> None:
    reranker = FixedScores([])
    assert reranker.rerank("q", []).results == []
    assert (await reranker.arerank("q", [])).results == []
    assert reranker.calls == 0


@pytest.mark.parametrize(("kwargs", "message"), [({"top_n": 0}, "top_n"), ({"score_threshold": math.nan}, "finite")])
def test_bad_arguments_raise_before_scoring(kwargs: dict[str, float], message: str) -> None:
    reranker = FixedScores([0.5])
    with pytest.raises(InvalidInputError, match=message):
        reranker.rerank("q", ["a"], **kwargs)  # type: ignore[arg-type]
    assert reranker.calls == 0


def test_results_carry_the_callers_documents() -> None:
    reranker = FixedScores([0.1, 0.9])
    inputs: list[DocumentInput] = [Document("a", id="A", metadata={"m": 1}), {"text": "b", "id": "B"}]
    response = reranker.rerank("q", inputs)
    assert [(r.document.id, r.document.text) for r in response.results] == [("B", "b"), ("A", "a")]
    assert response.results[1].document is inputs[0]


def test_usage_adds_up_and_keeps_unknown_as_none() -> None:
    total = Usage(prompt_tokens=3, total_tokens=3) + Usage(total_tokens=2)
    assert (total.prompt_tokens, total.total_tokens, total.search_units) == (3, 5, None)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"object": "list"}, "no result list"),
        ({"results": [{"index": 5, "relevance_score": 0.1}]}, "outside"),
        ({"results": [{"index": 0, "score": 0.1}, {"index": 0, "score": 0.2}]}, "more than once"),
        ({"results": [{"index": 0, "relevance_score": math.nan}]}, "non-finite"),
        ({"results": [{"index": 0, "relevance_score": "high"}]}, "non-numeric"),
        ({"results": [{"index": "0", "relevance_score": 0.1}]}, "integer index"),
        ({"results": [{"index": 0}]}, "no score"),
        # The common shape (int index, float relevance_score) has a fast path; its checks must hold as well.
        ({"results": [{"index": 0, "relevance_score": 0.5}, {"index": 0, "relevance_score": 0.4}]}, "more than once"),
        ({"results": [{"index": 1, "relevance_score": 0.5}, {"index": 1, "score": 0.4}]}, "more than once"),
        ({"results": [{"index": 0, "relevance_score": 0.5}, {"index": 2, "relevance_score": 0.4}]}, "outside"),
        ({"results": [{"index": -1, "relevance_score": 0.5}]}, "outside"),
        ({"results": [{"index": 0, "relevance_score": math.inf}]}, "non-finite"),
        ({"results": [{"index": True, "relevance_score": 0.5}]}, "integer index"),
    ],
)
def test_parser_rejects_broken_responses(payload: object, message: str) -> None:
    with pytest.raises(ResponseFormatError, match=message) as caught:
        parse_results(payload, n_documents=2, provider="acme")
    assert caught.value.provider == "acme"


def test_parser_reads_every_list_and_score_shape() -> None:
    assert parse_results([{"index": 1, "score": 0.5}], n_documents=2, provider="p") == [(1, 0.5)]
    assert parse_results({"data": [{"index": 0, "relevance_score": 1}]}, n_documents=1, provider="p") == [(0, 1.0)]
    assert parse_results({"rankings": [{"index": 0, "logit": -3.5}]}, n_documents=1, provider="p") == [(0, -3.5)]
    assert parse_results({"data": [{"index": 0, "score": [0.25]}]}, n_documents=1, provider="p") == [(0, 0.25)]
    mixed = [{"index": 2, "relevance_score": 0.5}, {"index": 0, "relevance_score": 1}, {"index": 1, "score": 0.1}]
    assert parse_results(mixed, n_documents=3, provider="p") == [(2, 0.5), (0, 1.0), (1, 0.1)]
    parsed = parse_results({"results": [{"index": 0, "relevance_score": 1}]}, n_documents=1, provider="p")
    assert type(parsed[0][1]) is float


def test_errors_render_provider_status_and_hint_and_survive_pickling() -> None:
    error = AuthenticationError(
        "invalid api key", provider="together", status_code=401, request_id="req-1", hint="Set TOGETHER_API_KEY"
    )
    assert str(error) == "[together] invalid api key (HTTP 401, request_id=req-1). Set TOGETHER_API_KEY"
    clone = pickle.loads(pickle.dumps(error))
    assert type(clone) is AuthenticationError
    assert (clone.provider, clone.status_code, str(clone)) == ("together", 401, str(error))
