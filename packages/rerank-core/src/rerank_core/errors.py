"""Typed errors. Each carries the provider, the HTTP status and the request id where known."""

from __future__ import annotations


class RerankError(Exception):
    """Base class of every error rerank-core raises."""

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        status_code: int | None = None,
        request_id: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.provider = provider
        self.status_code = status_code
        self.request_id = request_id
        self.hint = hint
        super().__init__(self._render())

    def _render(self) -> str:
        where = f"[{self.provider}] " if self.provider else ""
        facts = []
        if self.status_code is not None:
            facts.append(f"HTTP {self.status_code}")
        if self.request_id:
            facts.append(f"request_id={self.request_id}")
        text = where + self.message + (f" ({', '.join(facts)})" if facts else "")
        return text + (f". {self.hint}" if self.hint else "")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._render()!r})"

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only constructor: make the error picklable across processes.
        return (_rebuild, (type(self), self.message, self.provider, self.status_code, self.request_id, self.hint))


def _rebuild(
    cls: type[RerankError],
    message: str,
    provider: str | None,
    status_code: int | None,
    request_id: str | None,
    hint: str | None,
) -> RerankError:
    return cls(message, provider=provider, status_code=status_code, request_id=request_id, hint=hint)


class ConfigurationError(RerankError, ValueError):
    """The reranker is set up wrongly: a missing API key, an unknown provider or option, a missing extra."""


class InvalidInputError(RerankError, ValueError):
    """The caller passed something rerank-core cannot rerank; raised before any request is sent."""


class UnsupportedInputError(InvalidInputError):
    """Valid input that this reranker cannot take, though another may: a query longer than a local model's
    `max_length`, metadata it must send (`rank_fields`) that JSON cannot encode. A fallback chain moves on to
    its next member instead of stopping."""


class AuthenticationError(RerankError):
    """401 or 403: the API key is missing, wrong or lacks access."""


class InvalidRequestError(RerankError):
    """400, 404, 413 or 422: the provider rejected the request itself; retrying will not help."""


class RateLimitError(RerankError):
    """429 after all retries."""


class ProviderError(RerankError):
    """5xx after all retries: the provider failed."""


class RerankConnectionError(RerankError):
    """The provider could not be reached after all retries."""


class RerankTimeoutError(RerankError, TimeoutError):
    """The provider did not answer within `timeout`, after all retries."""


class ResponseFormatError(RerankError):
    """The provider answered 2xx, but the body breaks its own protocol (bad JSON, bad indices, NaN scores)."""
