"""Fixtures for the local cross-encoder tests: query and documents, and ONNX exports of the tiny models."""

from __future__ import annotations

import pytest

QUERY = "what is the capital of france"
DOCS = [
    "Paris is the capital of France, a city by the river Seine.",
    "Berlin is a big city in Germany.",
    "water and fire are two of the classical elements",
    "zebra xylophone",
    "The capital of France is Paris. " * 20,
    "",
    "cancer risk in patients with high blood pressure",
]


@pytest.fixture
def query() -> str:
    return QUERY


@pytest.fixture
def docs() -> list[str]:
    return list(DOCS)


@pytest.fixture(scope="session")
def tiny_onnx(tiny_cross_encoder: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The one-logit tiny cross-encoder exported by `rerank export-onnx --int8` (fp32 and int8 files)."""
    from tests.support.tiny_models import export_tiny_onnx

    return export_tiny_onnx(tiny_cross_encoder, tmp_path_factory.mktemp("tiny-onnx-1"))


@pytest.fixture(scope="session")
def tiny_onnx_2label(tiny_cross_encoder_2label: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The two-label tiny cross-encoder exported to ONNX (fp32 only)."""
    from tests.support.tiny_models import export_tiny_onnx

    return export_tiny_onnx(tiny_cross_encoder_2label, tmp_path_factory.mktemp("tiny-onnx-2"), int8=False)
