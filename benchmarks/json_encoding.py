"""Request-body encoding: orjson (the `fast-json` extra) vs the standard library's `json`, as `HTTPReranker` sends.

Both contenders are `rerank_core._json.body_bytes`, with orjson and as an install without it, on the same bodies:
100 short synthetic documents; 100 SciFact abstracts (when ../shared/data/scifact is there); 100 documents with
rich metadata (`send_metadata`: ten fields each); 100 documents with a few fields, once with and once without a
None among them (a body whose orjson form holds a null goes the standard library's way, so that one shows what
the detour costs). Figures are the best of 7 repeats of 200 encodings each, with the ratio to the standard
library measured in the same run.

    python -m benchmarks.json_encoding
"""

from __future__ import annotations

import functools
import timeit
from collections.abc import Callable
from typing import Any

from benchmarks.http_overhead import machine, scifact_abstracts
from benchmarks.synthetic import QUERY, texts
from rerank_core._json import _orjson, body_bytes, without_orjson


def bodies() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {"100 short documents": {"model": "m", "query": QUERY, "documents": texts(100)}}
    long = scifact_abstracts(100)
    if long is not None:
        found["100 SciFact abstracts"] = {"model": "m", "query": QUERY, "documents": long}
    rich = [
        {"text": text, "id": str(i), "metadata": {f"field{j}": [j, "value", 1.5, True] for j in range(10)}}
        for i, text in enumerate(texts(100))
    ]
    found["100 documents, 10 metadata fields each"] = {"model": "m", "query": QUERY, "documents": rich}
    few = [{"text": text, "metadata": {"year": 2024, "source": "wiki", "score": 0.5}} for text in texts(100)]
    found["100 documents, 3 metadata fields each"] = {"model": "m", "query": QUERY, "documents": few}
    with_none = [{"text": text, "metadata": {"year": 2024, "source": None, "score": 0.5}} for text in texts(100)]
    found["the same, one field None"] = {"model": "m", "query": QUERY, "documents": with_none}
    return found


def best_us(function: Callable[[], object]) -> float:
    return min(timeit.repeat(function, number=200, repeat=7)) / 200 * 1e6


def main() -> None:
    print(f"machine: {machine()}")
    if _orjson is None:
        raise SystemExit("orjson is not installed: pip install 'rerank-core[fast-json]'")
    print(f"orjson {_orjson.__version__}")
    for label, body in bodies().items():
        encode = functools.partial(body_bytes, body, provider="p")
        fast = best_us(encode)
        with without_orjson():
            standard = best_us(encode)
        size = len(encode()) / 1000
        print(
            f"{label:40} ({size:5.0f} KB): json {standard:7.1f} µs | orjson path {fast:6.1f} µs = "
            f"{fast / standard:.2f}x"
        )


if __name__ == "__main__":
    main()
