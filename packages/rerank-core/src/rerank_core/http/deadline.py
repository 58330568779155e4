"""One deadline for a whole sync attempt: connect, TLS, send, status line, headers and body.

httpx's sync timeouts bound each socket operation, not the exchange: a server that sends its status line one byte
at a time, each byte inside the read timeout, holds the caller for as long as it likes. The async path bounds the
whole attempt with `asyncio.timeout`; a thread cannot be cancelled, so here every socket operation of the attempt
is given only the time left until the attempt's deadline. When none is left the operation fails with httpcore's
own timeout error, which httpx turns into `httpx.ReadTimeout` (or Connect/WriteTimeout) and which closes that
connection, so nothing keeps running and no socket is left behind.

The deadline lives in a context variable set around one attempt: httpx's sync client does all of an exchange's
I/O on the calling thread, so each thread sees only its own attempt's deadline.
"""

from __future__ import annotations

import contextlib
import contextvars
import ssl
import time
import typing
from collections.abc import Iterable, Iterator

import httpcore
import httpx

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("rerank_attempt_deadline", default=None)
SocketOption = typing.Any


@contextlib.contextmanager
def attempt_deadline(seconds: float) -> Iterator[float]:
    """Bound every socket operation in the block by one deadline `seconds` from now; yields that deadline."""
    deadline = time.monotonic() + seconds
    token = _deadline.set(deadline)
    try:
        yield deadline
    finally:
        _deadline.reset(token)


def _left(timeout: float | None, error: type[Exception]) -> float | None:
    """The operation's timeout, cut to what is left of the attempt; raises `error` when nothing is."""
    deadline = _deadline.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise error("the attempt's deadline passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        stream = self._stream.start_tls(ssl_context, server_hostname, _left(timeout, httpcore.ConnectTimeout))
        return _DeadlineStream(stream)

    def get_extra_info(self, info: str) -> typing.Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self, backend: httpcore.NetworkBackend) -> None:
        self._backend = backend

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.NetworkStream:
        left = _left(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._backend.connect_tcp(host, port, left, local_address, socket_options))

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[SocketOption] | None = None
    ) -> httpcore.NetworkStream:
        left = _left(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._backend.connect_unix_socket(path, left, socket_options))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


def deadline_client(limits: httpx.Limits, verify: ssl.SSLContext | bool = True) -> httpx.Client:
    """An `httpx.Client` whose connections (direct or through an environment proxy) obey `attempt_deadline`."""
    client = httpx.Client(limits=limits, follow_redirects=False, verify=verify)
    transports = [client._transport, *client._mounts.values()]  # httpx offers no hook for this
    for transport in filter(None, transports):  # a NO_PROXY entry mounts None
        pool = getattr(transport, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        if not isinstance(backend, httpcore.NetworkBackend):
            client.close()
            raise RuntimeError(f"this httpx/httpcore version hides its network backend ({type(transport).__name__})")
        if not isinstance(backend, _DeadlineBackend):
            pool._network_backend = _DeadlineBackend(backend)  # type: ignore[union-attr]
    return client
