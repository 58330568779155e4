"""The HTTP transport: `HTTPReranker` and the parts it sends with, one module each.

`reranker` (the reranker: batching, retries, splitting, reading answers), `pool` (the pooled httpx clients and
their leases), `replicas` (which of a deployment's servers each request goes to), `inflight` (the reranker-wide
fair limit on requests in flight), `retry` (the retry policy), `deadline` (one deadline per sync attempt) and
`error_mapping` (answers and exceptions to typed errors, with secrets scrubbed).

Names are loaded on first use, so importing a module of this package (as the dialects do) does not import the
reranker and everything it needs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rerank_core.http.pool import ASYNC_POOL_SHARD
    from rerank_core.http.reranker import DEFAULT_MAX_CONNECTIONS, USER_AGENT, HTTPReranker

_HOMES = {
    "HTTPReranker": "rerank_core.http.reranker",
    "DEFAULT_MAX_CONNECTIONS": "rerank_core.http.reranker",
    "USER_AGENT": "rerank_core.http.reranker",
    "ASYNC_POOL_SHARD": "rerank_core.http.pool",
}
__all__ = ["ASYNC_POOL_SHARD", "DEFAULT_MAX_CONNECTIONS", "USER_AGENT", "HTTPReranker"]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'rerank_core.http' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value
