"""Honest score kinds: a kind is claimed only where the provider documents it, and the values can disprove it."""

from __future__ import annotations

import math
from typing import Any, Literal

import pytest
from tests.dialects.test_end_to_end import QUERY, call, inputs, mode, reranker_for
from tests.support.emulator import overlap_score
from tests.support.fixtures import StartEmulator

from rerank_core import Document
from rerank_core.base import Scores, build_response, normalized
from rerank_core.dialects import DIALECTS
from rerank_core.models import ScoreKind

__all__ = ["mode"]  # the sync/async fixture, shared with the end-to-end tests
Mode = Literal["sync", "async"]
DOCS = [Document(text) for text in ("a", "b", "c")]


def respond(scores: list[float], kind: ScoreKind, normalize: Literal["sigmoid"] | None = None) -> Any:
    scored = Scores(scores=dict(enumerate(scores)), provider="p", model=None, score_kind=kind)
    return build_response(scored, DOCS, None, None, normalize)


def sig(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_a_probability_outside_the_unit_interval_is_reported_as_unknown() -> None:
    response = respond([2.06, 0.4, -0.9], "probability")
    assert response.score_kind == "unknown"
    assert [r.relevance_score for r in response.results] == [2.06, 0.4, -0.9]


def test_a_probability_inside_the_unit_interval_is_kept() -> None:
    assert respond([0.9, 0.4, 0.0], "probability").score_kind == "probability"


@pytest.mark.parametrize("kind", ["logit", "unknown", "probability"])
def test_sigmoid_applies_to_logits_and_to_anything_outside_0_1(kind: ScoreKind) -> None:
    response = respond([2.06, 0.5, -6.3], kind, "sigmoid")
    assert response.score_kind == "probability"
    assert [r.relevance_score for r in response.results] == pytest.approx([sig(2.06), sig(0.5), sig(-6.3)])


def test_sigmoid_leaves_an_unknown_answer_wholly_inside_0_1_alone() -> None:
    # It may already be probabilities; a second sigmoid would squeeze them into [0.5, 0.73].
    response = respond([0.9, 0.5, 0.1], "unknown", "sigmoid")
    assert response.score_kind == "unknown"
    assert [r.relevance_score for r in response.results] == [0.9, 0.5, 0.1]


def test_sigmoid_maps_logits_even_when_they_all_lie_inside_0_1() -> None:
    assert normalized({0: 0.2, 1: 0.9}, "logit", "sigmoid") == ({0: sig(0.2), 1: sig(0.9)}, "probability")


def test_only_documented_ranges_are_claimed() -> None:
    claims = {name: dialect.score_kind for name, dialect in DIALECTS.items()}
    assert {name for name, kind in claims.items() if kind == "probability"} == {
        "cohere",
        "cohere-v1",
        "fireworks",
        "pinecone",
        "tei",
        "infinity",
        "azure",
        "deepinfra",
    }
    assert claims["nvidia"] == "logit"
    assert claims["vllm"] == claims["generic"] == "unknown"


def logit_scorer(query: str, text: str) -> float:
    """What vLLM returns for a model with an identity activation (ms-marco-MiniLM-L-6-v2): raw logits."""
    return round(8 * overlap_score(query, text) - 4, 6)


async def test_vllm_logits_are_unknown_and_sigmoid_normalizes_them(mode: Mode, start_emulator: StartEmulator) -> None:
    emu = start_emulator("vllm", scorer=logit_scorer)
    with reranker_for(emu, "vllm") as raw, reranker_for(emu, "vllm", normalize="sigmoid") as normalizing:
        logits = await call(raw, mode, inputs())
        probabilities = await call(normalizing, mode, inputs())
    assert logits.score_kind == "unknown"
    assert min(r.relevance_score for r in logits.results) < 0
    assert probabilities.score_kind == "probability"
    assert [r.index for r in probabilities.results] == [r.index for r in logits.results]
    expected = [sig(logit_scorer(QUERY, r.document.text)) for r in probabilities.results]
    assert [r.relevance_score for r in probabilities.results] == pytest.approx(expected)


async def test_a_threshold_compares_normalized_scores(mode: Mode, start_emulator: StartEmulator) -> None:
    emu = start_emulator("vllm", scorer=logit_scorer)
    with reranker_for(emu, "vllm", normalize="sigmoid") as reranker:
        response = (
            reranker.rerank(QUERY, inputs(), score_threshold=0.5)
            if mode == "sync"
            else await reranker.arerank(QUERY, inputs(), score_threshold=0.5)
        )
    texts = [
        item if isinstance(item, str) else item.text if isinstance(item, Document) else item["text"]
        for item in inputs()
    ]
    passing = {i for i, text in enumerate(texts) if sig(logit_scorer(QUERY, text)) >= 0.5}
    assert 0 < len(passing) < len(texts)  # the threshold falls between the documents: both sides are checked
    assert {r.index for r in response.results} == passing
    assert all(r.relevance_score >= 0.5 for r in response.results)
    assert {d.index for d in response.dropped} == set(range(len(texts))) - passing
    assert {d.reason for d in response.dropped} == {"score_threshold"}


async def test_logits_behind_a_probability_dialect_are_not_called_probabilities(
    mode: Mode, start_emulator: StartEmulator
) -> None:
    """llama.cpp's llama-server speaks a Cohere-v1-like body but returns raw logits."""
    emu = start_emulator("cohere-v1", scorer=logit_scorer)
    with reranker_for(emu, "cohere-v1") as raw, reranker_for(emu, "cohere-v1", normalize="sigmoid") as normalizing:
        logits = await call(raw, mode, inputs())
        probabilities = await call(normalizing, mode, inputs())
    assert logits.score_kind == "unknown"
    assert probabilities.score_kind == "probability"
    assert all(0 < r.relevance_score < 1 for r in probabilities.results)
    assert [r.index for r in probabilities.results] == [r.index for r in logits.results]
