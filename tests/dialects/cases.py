"""What each dialect must put on the wire, per its provider's documentation: the expectations the tests check."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class WireCase:
    provider: str
    docs_key: str
    """The body field that carries the documents."""
    top_key: str | None
    """The body field that carries top-n, or None where the API has none (the client cuts)."""
    fixed: dict[str, Any] = field(default_factory=dict)
    """Fields sent with a fixed value, e.g. `return_documents: false`."""
    sends_model: bool = True
    query_is_object: bool = False


NO_DOCS_BACK = {"return_documents": False}

CASES = [
    WireCase("fireworks", "documents", "top_n", NO_DOCS_BACK),
    WireCase("nebius", "documents", None),
    WireCase("generic", "documents", "top_n", NO_DOCS_BACK),
    WireCase("together", "documents", "top_n", NO_DOCS_BACK),
    WireCase("onerouter", "documents", "top_n"),
    WireCase("cohere", "documents", "top_n"),
    WireCase("cohere-v1", "documents", "top_n", NO_DOCS_BACK),
    WireCase("jina", "documents", "top_n", NO_DOCS_BACK),
    WireCase("voyage", "documents", "top_k", NO_DOCS_BACK),
    WireCase("mixedbread", "input", "top_k", {"return_input": False}),
    WireCase("pinecone", "documents", "top_n", NO_DOCS_BACK),
    WireCase("nvidia", "passages", None, query_is_object=True),
    WireCase("tei", "texts", None, {"return_text": False}, sends_model=False),
    WireCase("vllm", "documents", "top_n"),
    WireCase("infinity", "documents", "top_n", NO_DOCS_BACK),
    WireCase("azure", "documents", "top_n"),
    WireCase("deepinfra", "documents", None, sends_model=False),
    WireCase("siliconflow", "documents", "top_n", NO_DOCS_BACK),
    WireCase("openrouter", "documents", "top_n"),
    WireCase("zeroentropy", "documents", "top_n"),
    WireCase("contextual", "documents", "top_n"),
    WireCase("dashscope-compatible", "documents", "top_n"),
]
BY_PROVIDER = {case.provider: case for case in CASES}
CLOUDS = frozenset({"bedrock", "vertex", "watsonx"})
"""Providers that sign or authorize each request from a cloud's credentials (watsonx: IAM tokens) and nest the
query and documents in a body of their own: they have no `WireCase`, and `test_<provider>.py` covers them."""
NESTED = frozenset({"dashscope", "cloudflare"})
"""Providers that nest the query and documents in a body of their own (with no cloud signing): no `WireCase`
either; `test_<provider>.py` covers them."""


def sent_texts(body: dict[str, Any], case: WireCase) -> list[str]:
    """The document texts a request carried, whether sent as strings or as `{"text": ...}` objects."""
    return [doc if isinstance(doc, str) else doc["text"] for doc in body[case.docs_key]]
