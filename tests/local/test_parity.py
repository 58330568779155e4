"""Same weights, same scores as sentence-transformers `CrossEncoder.predict` (a test-only dependency)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sentence_transformers import CrossEncoder

from rerank_core import TorchCrossEncoder

TEXTS = [
    "Paris is the capital of France, a city by the river Seine.",
    "Berlin is a big city in Germany.",
    "water and fire are two of the classical elements",
    "zebra xylophone",
    "",
    "cancer risk in patients with high blood pressure " * 3,
    "The capital of France is Paris. " * 40,  # longer than max_length: truncated on both sides the same way
    "deep neural network models for search ranking and retrieval of relevant text",
]
QUERIES = ["what is the capital of france", "risk of cancer", "neural ranking"]


def ranking(scores: list[float]) -> list[int]:
    return sorted(range(len(scores)), key=lambda i: (-scores[i], i))


@pytest.mark.parametrize("query", QUERIES)
@pytest.mark.parametrize("batch_size", [1, 4, 32])
def test_one_logit_parity_with_sentence_transformers(tiny_cross_encoder: str, query: str, batch_size: int) -> None:
    st = CrossEncoder(tiny_cross_encoder, activation_fn=torch.nn.Sigmoid(), max_length=128, device="cpu")
    want = st.predict([(query, text) for text in TEXTS], batch_size=32).tolist()

    ours = TorchCrossEncoder(tiny_cross_encoder, max_length=128, batch_size=batch_size, local_files_only=True)
    response = ours.rerank(query, TEXTS)
    got = {r.index: r.relevance_score for r in response.results}

    assert np.max(np.abs(np.array([got[i] for i in range(len(TEXTS))]) - np.array(want))) < 1e-4
    assert [r.index for r in response.results] == ranking(want)


def test_raw_logit_parity_with_sentence_transformers(tiny_cross_encoder: str) -> None:
    st = CrossEncoder(tiny_cross_encoder, activation_fn=torch.nn.Identity(), device="cpu")
    query = QUERIES[0]
    want = st.predict([(query, text) for text in TEXTS]).tolist()
    got = TorchCrossEncoder(tiny_cross_encoder, activation="none", local_files_only=True).predict_logits(query, TEXTS)
    assert got == pytest.approx(want, abs=1e-4)
    assert ranking(got) == ranking(want)


def test_two_label_parity_with_sentence_transformers(tiny_cross_encoder_2label: str) -> None:
    st = CrossEncoder(tiny_cross_encoder_2label, activation_fn=torch.nn.Softmax(dim=-1), device="cpu")
    query = QUERIES[0]
    want = st.predict([(query, text) for text in TEXTS])[:, 1].tolist()
    response = TorchCrossEncoder(tiny_cross_encoder_2label, local_files_only=True).rerank(query, TEXTS)
    got = [score for _, score in sorted((r.index, r.relevance_score) for r in response.results)]
    assert got == pytest.approx(want, abs=1e-4)
    assert [r.index for r in response.results] == ranking(want)
