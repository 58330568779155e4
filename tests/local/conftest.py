"""Fixtures for the local cross-encoder tests: query and documents shared by several modules."""

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
