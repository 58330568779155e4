"""When to retry a failed rerank request, and how long to wait first.

`max_retries` counts retries after the first attempt. Network errors, timeouts, 408, 409, 425, 429, 499 and
5xx are retried with exponential backoff and full jitter, unless the provider says otherwise: `x-should-retry`
overrides the status (except for the never-retry statuses), and `retry-after-ms`, `retry-after` (seconds or an
HTTP date) and `x-ratelimit-reset` (a unix time) set the wait. A requested wait longer than `max_retry_after` is
not slept on: the call gives up at once and the error says when to come back.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

from rerank_core.limits import DEFAULT_MAX_RETRY_AFTER, MAX_RETRIES, MAX_TIMEOUT

RETRY_STATUSES = frozenset({408, 409, 425, 429, 499})
"""Plus every 5xx."""
NEVER_RETRY_STATUSES = frozenset({400, 401, 403, 404, 413, 422})
"""The request itself is wrong: repeating it cannot help, whatever the provider's headers say."""


@dataclass(frozen=True)
class RetryPolicy:
    """Retry decisions and waits. `sleep`/`asleep` are seams so tests can record waits instead of waiting."""

    max_retries: int = 2
    backoff_base: float = 0.5
    """The first retry waits up to this long; each further retry doubles the ceiling."""
    backoff_cap: float = 8.0
    max_retry_after: float = DEFAULT_MAX_RETRY_AFTER
    """A provider-requested wait longer than this ends the call (see `wait_too_long`) instead of sleeping."""
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    asleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, repr=False)

    def __post_init__(self) -> None:
        retries = self.max_retries
        if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= MAX_RETRIES:
            raise ValueError(f"max_retries must be an int from 0 to {MAX_RETRIES}, not {retries!r}")
        for name in ("backoff_base", "backoff_cap", "max_retry_after"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= MAX_TIMEOUT:
                raise ValueError(f"{name} must be a number of seconds from 0 to {MAX_TIMEOUT:g}, not {value!r}")

    def delay(self, retries_done: int, status: int | None, headers: Mapping[str, str] | None) -> float | None:
        """Seconds to wait before the next attempt, or None to give up.

        `status` and `headers` are None for a network error or timeout (always retryable).
        """
        if retries_done >= self.max_retries:
            return None
        if status is not None and not is_retryable(status, headers or {}):
            return None
        requested = requested_wait(headers or {})
        if requested is not None and requested > self.max_retry_after:
            return None
        if requested is not None and requested >= 0:
            return requested
        return random.uniform(0.0, min(self.backoff_cap, self.backoff_base * 2**retries_done))

    def wait_too_long(self, status: int | None, headers: Mapping[str, str] | None) -> float | None:
        """The provider's requested wait when it is why `delay` gave up (longer than `max_retry_after`)."""
        if status is None or not is_retryable(status, headers or {}):
            return None
        requested = requested_wait(headers or {})
        return requested if requested is not None and requested > self.max_retry_after else None


def is_retryable(status: int, headers: Mapping[str, str]) -> bool:
    if status in NEVER_RETRY_STATUSES:
        return False
    should_retry = headers.get("x-should-retry", "").strip().lower()
    if should_retry in ("true", "false"):
        return should_retry == "true"
    return status in RETRY_STATUSES or status >= 500


# A wait longer than this is "not within any wait we would take" (max_retry_after is far below it); bounding it
# here keeps every later use (sleeps, the "retry after <date>" hint) inside the platform's time range.
LONGEST_WAIT = 10 * 365 * 86_400.0


def requested_wait(headers: Mapping[str, str]) -> float | None:
    """The wait the provider asked for, in seconds within [0, LONGEST_WAIT], if any header states one we can
    read. A wait in the past is 0; an absurd one (`Retry-After: 1e17`) is LONGEST_WAIT."""
    wait = _stated_wait(headers)
    return None if wait is None else min(max(wait, 0.0), LONGEST_WAIT)


def _stated_wait(headers: Mapping[str, str]) -> float | None:
    milliseconds = _number(headers.get("retry-after-ms"))
    if milliseconds is not None:
        return milliseconds / 1000.0
    retry_after = headers.get("retry-after")
    if retry_after is not None:
        seconds = _number(retry_after)
        if seconds is not None:
            return seconds
        try:
            return parsedate_to_datetime(retry_after).timestamp() - time.time()
        except (TypeError, ValueError, IndexError, OverflowError, OSError):
            pass
    reset = _number(headers.get("x-ratelimit-reset"))
    if reset is not None and reset > 1e9:  # an absolute unix time, not a relative count
        return reset - time.time()
    return None


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None
