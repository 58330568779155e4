"""Turn a failed HTTP exchange into the typed `RerankError` that says what went wrong and what to do.

The provider's own message is read from its error body; every text that ends up in an error is scrubbed of
secrets first, because providers sometimes echo the request's headers back.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import time
import urllib.parse
import weakref
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import httpx

from rerank_core._json import loads
from rerank_core.errors import (
    AuthenticationError,
    InvalidRequestError,
    ProviderError,
    RateLimitError,
    RerankConnectionError,
    RerankError,
    RerankTimeoutError,
    ResponseFormatError,
)


class Answer(Protocol):
    """What the error readers need of an answer: an `httpx.Response`, or the transport's own read of one."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> httpx.Headers: ...

    @property
    def text(self) -> str: ...


REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-amzn-requestid", "x-trace-id", "cf-ray")
_REQUEST_ID_NAMES = frozenset(REQUEST_ID_HEADERS)
MAX_TEXT = 300
FORMAT_HINT = "The provider broke its own response format; rerank-core will not guess the missing scores"


class Scrubber:
    """Replaces every known secret in a text with `***`, in any encoding a server or a library may echo it in.

    Each secret is matched as written, URL-encoded, JSON-escaped, HTML-escaped and base64-encoded; a text that
    still holds one once its HTML entities, JSON escapes or percent-encoding are decoded is returned decoded and
    scrubbed. Scrub before cutting a text: a cut first could leave the start of a key behind.
    """

    def __init__(self, secrets: Iterable[str | None]) -> None:
        self._plain: list[str] = []
        self._forms: list[str] = []
        self.add(secrets)

    def add(self, secrets: Iterable[str | None]) -> None:
        """Scrub these too from now on (a cloud's token, once it is known)."""
        plain = set(self._plain) | {s for s in secrets if s and len(s) >= MIN_SECRET}  # tiny ones mangle text
        forms = {form for secret in plain for form in _encodings(secret)}
        # Longest first, so a secret containing another is replaced whole. Assigned whole: readers never lock.
        self._forms = sorted((f for f in forms if len(f) >= MIN_SECRET), key=len, reverse=True)
        self._plain = sorted(plain, key=len, reverse=True)

    def __bool__(self) -> bool:
        return bool(self._plain)

    def __call__(self, text: str) -> str:
        for form in self._forms:
            if form in text:
                text = text.replace(form, "***")
        if "&" in text or "\\" in text or "%" in text:
            for decode in (html.unescape, _json_unescape, urllib.parse.unquote_plus):
                decoded = decode(text)
                if decoded != text and any(secret in decoded for secret in self._plain):
                    return self(decoded)
        return text


MIN_SECRET = 4


def _encodings(secret: str) -> set[str]:
    json_escaped = json.dumps(secret)[1:-1]
    utf8 = secret.encode()
    return {
        secret,
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote_plus(secret),
        json_escaped,
        json_escaped.replace("/", "\\/"),
        json.dumps(secret, ensure_ascii=True)[1:-1],
        "".join(f"\\u{ord(c):04x}" for c in secret),
        html.escape(secret),
        base64.b64encode(utf8).decode().rstrip("="),
        base64.urlsafe_b64encode(utf8).decode().rstrip("="),
    }


def _json_unescape(text: str) -> str:
    try:
        decoded = json.loads(f'"{text}"')
    except ValueError:
        return text.replace("\\/", "/")
    return decoded if isinstance(decoded, str) else text


def basic_credentials(user: str | None, password: str | None) -> list[str]:
    """The secrets a `user:password@` in a URL puts on the wire: the password, the pair, and the pair's base64."""
    if not password:
        return []
    pair = f"{user or ''}:{password}"
    return [password, pair, base64.b64encode(pair.encode()).decode()]


class ScrubLogs(logging.Filter):
    """Scrubs every record of the loggers it sits on with the scrubbers of every live reranker.

    httpcore logs response headers at DEBUG and httpx each request's URL at INFO; a server that echoes a key in a
    header (`x-request-id`, `Location`) would otherwise put it in the application's logs."""

    def __init__(self) -> None:
        super().__init__()
        self.scrubbers: weakref.WeakSet[Scrubber] = weakref.WeakSet()

    def filter(self, record: logging.LogRecord) -> bool:
        scrubbers = [scrubber for scrubber in list(self.scrubbers) if scrubber]
        if not scrubbers:
            return True
        try:
            text = record.getMessage()
        except Exception:  # a record whose args do not fit its format: logging reports that itself
            return True
        scrubbed = text
        for scrub in scrubbers:
            scrubbed = scrub(scrubbed)
        if scrubbed != text:
            record.msg, record.args = scrubbed, None
        return True


# A filter on a logger sees only the records logged on that very logger, not its children's: so each by name.
SCRUBBED_LOGGERS = (
    "httpx",
    "httpcore",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "rerank_core",
    "rerank_core.http.reranker",
    "rerank_core.fallback",
    "rerank_core.cache",
    "rerank_core.chunking",
    # The clouds' own libraries: botocore's signer logs the canonical request (with the session token) at DEBUG.
    "botocore",
    "botocore.auth",
    "botocore.credentials",
    "botocore.utils",
    "google.auth",
    "google.auth.transport.requests",
    "google.oauth2._client",
)
LOG_SCRUBBING = ScrubLogs()
for _name in SCRUBBED_LOGGERS:
    logging.getLogger(_name).addFilter(LOG_SCRUBBING)


class CredentialScrubbing:
    """Keeps a cloud auth's short-lived credentials (a session token, an access token) out of the scrubbed logs and
    out of the errors of the rerankers that use it. Call `update` with the credentials before each use: new ones
    are added, and the older ones stay (a record or an error written with them may still come)."""

    def __init__(self) -> None:
        self._scrubber = Scrubber(())
        self._followers: weakref.WeakSet[Scrubber] = weakref.WeakSet()
        self._known: set[int] = set()
        LOG_SCRUBBING.scrubbers.add(self._scrubber)

    def __repr__(self) -> str:
        return "CredentialScrubbing()"

    def follow(self, scrubber: Scrubber) -> None:
        """A reranker's own scrubber learns the credentials too (known ones now, new ones as they come)."""
        scrubber.add(self._scrubber._plain)
        self._followers.add(scrubber)

    def update(self, *secrets: str | None) -> None:
        key = hash(secrets)
        if key in self._known:
            return
        self._known.add(key)
        for scrubber in [self._scrubber, *self._followers]:
            scrubber.add(secrets)


def request_id_from(headers: Mapping[str, str], payload: Any = None) -> str | None:
    # One pass over the headers: each lookup in httpx.Headers is itself a pass over all of them.
    found = {name.lower(): value for name, value in headers.items() if value and name.lower() in _REQUEST_ID_NAMES}
    for name in REQUEST_ID_HEADERS:
        if name in found:
            return found[name]
    if isinstance(payload, dict):
        for key in ("request_id", "requestId"):
            if isinstance(payload.get(key), str):
                return str(payload[key])
    return None


def provider_message(payload: Any, raw_text: str) -> str:
    """The provider's own words: `error.message`, `message`, `detail` (str or `[].msg`), `error`, else raw text."""
    message = error_message(payload)
    if message is not None:
        return message
    text = raw_text.strip()
    return text if text else "(empty body)"


def error_message(payload: Any) -> str | None:
    """The message of an error object (`error.message`, `message`, `detail` as str or `[].msg`, `error`,
    `errors[].message`), if `payload` is one."""
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        for key in ("message", "Message"):  # AWS services answer either spelling
            if isinstance(payload.get(key), str):
                return str(payload[key])
        detail = payload.get("detail")
        if isinstance(detail, str):
            return detail
        if isinstance(detail, list):
            messages = [str(item["msg"]) for item in detail if isinstance(item, dict) and "msg" in item]
            if messages:
                return "; ".join(messages)
        if isinstance(error, str):
            return error
        errors = payload.get("errors")  # Cloudflare's envelope: {"success": false, "errors": [{code, message}]}
        if isinstance(errors, list):
            messages = [str(item["message"]) for item in errors if isinstance(item, dict) and "message" in item]
            if messages:
                return "; ".join(messages)
    return None


def truncate(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def read_payload(response: Answer) -> Any:
    """The JSON body of an answer, or None when it has none (or it is not JSON, or nested past Python's limit)."""
    return loads(response.text)


def describe_response(response: Answer, scrub: Scrubber) -> str:
    """A short line for logs: the status and the provider's own message."""
    message = provider_message(read_payload(response), response.text)
    return f"HTTP {response.status_code}: {truncate(scrub(message), 120)}"


def error_from_response(
    response: Answer,
    *,
    provider: str,
    attempts: int,
    scrub: Scrubber,
    api_key_env: str | None,
    auth_hint: str | None = None,
    retry_after: float | None = None,
    max_retry_after: float | None = None,
) -> RerankError:
    """The typed error for a non-2xx answer. `retry_after`: the provider asked to wait longer than we may sleep."""
    status = response.status_code
    payload = read_payload(response)
    message = truncate(scrub(provider_message(payload, response.text)))
    request_id = request_id_from(response.headers, payload)
    tried = f"Gave up after {attempts} attempts; " if attempts > 1 else ""
    kind: type[RerankError]
    if status in (401, 403):
        kind = AuthenticationError
        where = f"pass api_key=... or set {api_key_env}" if api_key_env else "pass api_key=..."
        hint = auth_hint or f"Check the API key and its access to this model: {where}"
    elif status == 429:
        kind, hint = RateLimitError, tried + "lower max_concurrency, raise max_retries, or ask for a higher limit"
    elif status == 413:
        kind = InvalidRequestError
        hint = "Even a single document is too large: shorten it or turn on the provider's truncation option"
    elif status == 404:
        kind, hint = InvalidRequestError, "Check base_url (the rerank endpoint) and the model name"
    elif status == 408:
        kind, hint = RerankTimeoutError, tried + "the provider timed out reading the request; retry later"
    elif status >= 500:
        kind, hint = ProviderError, tried + "the provider failed; retry later or raise max_retries"
    elif 300 <= status < 400:
        location = scrub(response.headers.get("location", "?"))
        kind, hint = InvalidRequestError, f"base_url redirects to {location}; use the final URL"
    elif status == 409:
        kind, hint = ProviderError, tried + "the provider reported a conflict; retry later"
    else:
        kind, hint = InvalidRequestError, "The provider rejected the request; check the model name and options"
    if retry_after is not None:
        hint = (
            f"The provider asks to wait {retry_after:.0f} s, longer than max_retry_after={max_retry_after:g} s: "
            f"retry after {_utc_after(retry_after)}, or raise max_retry_after"
        )
    return kind(
        message,
        provider=provider,
        status_code=status,
        request_id=scrub(request_id) if request_id else None,
        hint=hint,
    )


def _utc_after(seconds: float) -> str:
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(time.time() + seconds))
    except (OverflowError, OSError, ValueError):  # beyond the platform's time_t: no date to name
        return f"{seconds:.0f} s"


def error_from_exception(
    exc: httpx.TransportError, *, provider: str, url: str, timeout: float, attempts: int, scrub: Scrubber
) -> RerankError:
    """The typed error for a request that got no (complete) answer."""
    tries = f"{attempts} attempt{'s' if attempts > 1 else ''}"
    if isinstance(exc, httpx.PoolTimeout):  # only with a caller's client: ours never makes a request wait here
        return RerankTimeoutError(
            f"no free connection in the http client's pool within timeout={timeout:g} s ({tries}); "
            "the provider was not asked",
            provider=provider,
            hint="Raise the connection limits of the httpx client you passed in, or lower max_connections",
        )
    if isinstance(exc, httpx.TimeoutException):
        return RerankTimeoutError(
            f"no answer from {scrub(url)} within timeout={timeout:g} s ({type(exc).__name__}, {tries})",
            provider=provider,
            hint="Raise timeout= or max_retries=, or check the provider's status",
        )
    detail = scrub(str(exc)) or type(exc).__name__
    return RerankConnectionError(
        f"could not get an answer from {scrub(url)}: {detail} ({tries})",
        provider=provider,
        hint="Check base_url, that the server is up, and your network or proxy",
    )


def with_context(
    error: RerankError, *, provider: str, status_code: int | None, request_id: str | None, scrub: Scrubber
) -> RerankError:
    """The same error, re-made with the exchange's provider/status/request id filled in and secrets scrubbed."""
    return type(error)(
        scrub(error.message),
        provider=error.provider or provider,
        status_code=error.status_code if error.status_code is not None else status_code,
        request_id=error.request_id or request_id,
        hint=scrub(error.hint) if error.hint else (FORMAT_HINT if isinstance(error, ResponseFormatError) else None),
    )


def format_error(
    message: str, *, provider: str, response: Answer, request_id: str | None, scrub: Scrubber
) -> ResponseFormatError:
    return ResponseFormatError(
        scrub(message),
        provider=provider,
        status_code=response.status_code,
        request_id=request_id,
        hint=FORMAT_HINT,
    )
