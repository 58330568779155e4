"""`quantize="int8"`: dynamic int8 Linear layers on CPU, close to the float32 scores."""

from __future__ import annotations

import pytest

from rerank_core import ConfigurationError, TorchCrossEncoder

QUERY = "what is the capital of france"
DOCS = [
    "Paris is the capital of France, a city by the river Seine.",
    "Berlin is a big city in Germany.",
    "water and fire are two of the classical elements",
    "zebra xylophone",
    "cancer risk in patients with high blood pressure",
    "The capital of France is Paris. " * 10,
]


def test_int8_quantizes_linear_layers_and_keeps_scores_close(tiny_cross_encoder: str) -> None:
    import torch

    fp32 = TorchCrossEncoder(tiny_cross_encoder, activation="none", local_files_only=True)
    int8 = TorchCrossEncoder(tiny_cross_encoder, activation="none", quantize="int8", local_files_only=True)
    want, got = fp32.predict_logits(QUERY, DOCS), int8.predict_logits(QUERY, DOCS)

    int8.warm_up()
    modules = list(int8._network.modules())
    assert sum(isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in modules) == 2 * 6 + 2
    assert not any(isinstance(m, torch.nn.Linear) for m in modules)

    # A 32-wide random model is a harsh case for int8 (trained MiniLM agreement is in docs/benchmarks.md):
    # ask for the same top 3 and errors well below the spread of scores.
    spread = max(want) - min(want)
    assert max(abs(a - b) for a, b in zip(got, want, strict=True)) < 0.5 * spread
    assert got != want, "int8 really ran a different (quantized) network"
    assert ranking(got)[:3] == ranking(want)[:3]


def ranking(scores: list[float]) -> list[int]:
    return sorted(range(len(scores)), key=lambda i: -scores[i])


def test_int8_is_never_the_default(tiny_cross_encoder: str) -> None:
    import torch

    reranker = TorchCrossEncoder(tiny_cross_encoder, local_files_only=True)
    assert reranker.quantize is None
    reranker.warm_up()
    assert sum(isinstance(m, torch.nn.Linear) for m in reranker._network.modules()) == 2 * 6 + 2


def test_int8_is_cpu_only(tiny_cross_encoder: str) -> None:
    with pytest.raises(ConfigurationError, match="CPU-only"):
        TorchCrossEncoder(tiny_cross_encoder, device="meta", quantize="int8", local_files_only=True).warm_up()
