"""The retry policy's former home, kept for imports written against it: see `rerank_core.http.retry`."""

from rerank_core.http.retry import NEVER_RETRY_STATUSES, RETRY_STATUSES, RetryPolicy, is_retryable, requested_wait

__all__ = ["NEVER_RETRY_STATUSES", "RETRY_STATUSES", "RetryPolicy", "is_retryable", "requested_wait"]
