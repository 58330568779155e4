"""Which setting and header names carry secrets: one list for the transport's scrubber and the wrappers'
serialization checks."""

from __future__ import annotations

from collections.abc import Mapping

SECRET_NAME_WORDS = (
    "auth",
    "key",
    "token",
    "secret",
    "cookie",
    "session",
    "password",
    "passwd",
    "signature",
    "credential",
    "private",
    "jwt",
    "bearer",
)


def looks_secret(name: str) -> bool:
    """A header or option named like `X-Signature`, `X-Client-Credential` or `api_key` holds a secret."""
    lowered = name.lower()
    return any(word in lowered for word in SECRET_NAME_WORDS)


def holds_secret(value: object) -> bool:
    """True if a config (or any nested fallback member, or backend options) carries a plaintext secret: an
    `api_key`, or a header whose name looks secret."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if key == "api_key" and item is not None:
                return True
            if key == "headers" and isinstance(item, Mapping) and any(looks_secret(str(name)) for name in item):
                return True
            if holds_secret(item):
                return True
        return False
    if isinstance(value, list | tuple):
        return any(holds_secret(item) for item in value)
    return False
