"""The synthetic rerank workload shared by the HTTP-side benchmarks: one query, documents of 40-69 words."""

from __future__ import annotations

QUERY = "how do cross encoders rerank search results"
WORDS = ["search", "rerank", "cross", "encoder", "results", "query", "document", "model", "score", "neural"]
WORDS += ["ranking", "fast", "index"]


def texts(n: int) -> list[str]:
    """`n` deterministic documents, each a different rotation and length of the same vocabulary."""
    return [" ".join(WORDS[(i + j) % len(WORDS)] for j in range(40 + i % 30)) for i in range(n)]
