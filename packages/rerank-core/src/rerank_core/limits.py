"""Upper bounds on settings, shared by the config schema and the constructors that validate them.

A value past a bound is almost always a typo or a unit mistake (milliseconds for seconds), and a silently
accepted `timeout=inf` or `max_retries=10**6` turns one failing provider into a call that never returns.
"""

MAX_TIMEOUT = 3600.0
"""Seconds, for `timeout`."""
MAX_RETRIES = 20
MAX_CONCURRENCY = 1024
MAX_COOLDOWN = 86_400.0
"""Seconds a tripped circuit breaker may skip a member."""
DEFAULT_MAX_RETRY_AFTER = 60.0
"""A provider asking to wait longer than this (seconds) gets a `RateLimitError` instead of a sleeping caller."""
DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024
"""The largest response body read from a provider."""
