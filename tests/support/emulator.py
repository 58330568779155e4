"""A real HTTP server on 127.0.0.1 that speaks one provider dialect, with fault modes.

    with ProviderEmulator("together", latency=0.0) as emu:
        emu.fail_next(Fault(status=429, headers={"retry-after": "0"}))
        reranker = load_reranker("together:m", base_url=emu.base_url, api_key="sk-test")

The dialect-specific parts (request schema, response shape) live in `dialect_apps.py`; this module is the
server, the scorer and the fault machinery.
"""

from __future__ import annotations

import json
import re
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.dialect_apps import APPS, EmulatorApp, RequestRejected

TOKEN = re.compile(r"[a-z0-9]+")


def overlap_score(query: str, text: str) -> float:
    """Deterministic relevance in (0, 1): the share of query words found in the text, squashed off the ends."""
    q = set(TOKEN.findall(query.lower()))
    d = set(TOKEN.findall(text.lower()))
    if not q:
        return 0.01
    return round(0.01 + 0.98 * len(q & d) / len(q), 6)


@dataclass
class Fault:
    """One injected misbehaviour, consumed by one request."""

    status: int | None = None
    """Answer with this status (and `body`, or a provider-style error body)."""
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    """JSON payload to send instead of the real answer (with `status`, or 200 if None)."""
    raw: bytes | None = None
    """Raw bytes to send as the body, e.g. truncated JSON."""
    delay: float = 0.0
    """Seconds to wait before answering (past the client's timeout = a timeout)."""
    mutate: Callable[[Any], Any] | None = None
    """Transform the real, well-formed payload (bad indices, NaN scores, ignored top_n...)."""
    drop_connection: bool = False
    """Close the socket without answering."""
    ignore_top_n: bool = False
    """Answer every document even when the request asked for `top_n` (a provider that ignores it)."""
    content_type: str = "application/json"
    drip_interval: float = 0.0
    """Send the body a few bytes at a time, this many seconds apart (a slow-drip body)."""
    head_drip_interval: float = 0.0
    """Send the status line and headers one byte at a time, this many seconds apart (a slow-drip head)."""
    cut_after: int | None = None
    """Send only this many bytes of the body (content-length promises all of it), then close: a reset mid-body."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog of 5 overflows when a client opens a pool of connections at once: Linux then
    # drops the handshake, and the client waits ~1 s for a SYN retry or reads a reset (measured with 32 at once).
    request_queue_size = 1024

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out and hung up is what timeout tests provoke, not an emulator failure.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body: Any
    raw: bytes | None = None
    """The body's bytes as sent (what a request signature covers)."""


class ProviderEmulator:
    def __init__(
        self,
        dialect: str,
        *,
        latency: float = 0.0,
        api_key: str | None = None,
        scorer: Callable[[str, str], float] = overlap_score,
        max_documents: int | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.app: EmulatorApp = APPS[dialect]
        self.tls = tls
        """If set, the emulator serves HTTPS with this server context (see tests/support/tls.py)."""
        self.latency = latency
        self.api_key = api_key
        """If set, requests must authenticate with it the dialect's way, else 401."""
        self.scorer = scorer
        self.max_documents = max_documents
        """If set, a request with more documents gets 413."""
        self.requests: list[RecordedRequest] = []
        self._faults: list[Fault] = []
        self._sticky: Fault | None = None
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._in_flight = 0
        self.peak_in_flight = 0
        """The most requests this emulator was serving at the same moment."""

    # -- control ------------------------------------------------------------------------------------------

    def fail_next(self, *faults: Fault) -> None:
        with self._lock:
            self._faults.extend(faults)

    def fail_always(self, fault: Fault | None) -> None:
        """Apply `fault` to every request until called with None (a provider that is down)."""
        with self._lock:
            self._sticky = fault

    @property
    def base_url(self) -> str:
        assert self._server is not None, "emulator not started"
        host, port = self._server.server_address[:2]
        return f"{'https' if self.tls else 'http'}://{host!s}:{port}"

    @property
    def url(self) -> str:
        """The full endpoint URL."""
        return self.base_url + self.app.paths[0]

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self.requests)

    def start(self) -> ProviderEmulator:
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else headers and body go out as two segments, 40 ms apart

            def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                # Counted until the answer is ready, not until it is written: once the client has read it, its
                # next request may arrive before this thread gets to leave a block around the write.
                with emulator._counting_in_flight():
                    reply = emulator._prepare(self)
                reply()

            def do_GET(self) -> None:
                emulator._send(self, 404, {"error": "not found"})

        self._server = _Server(("127.0.0.1", 0), Handler)
        if self.tls is not None:
            self._server.socket = self.tls.wrap_socket(self._server.socket, server_side=True)
        # A short poll interval: `stop()` waits up to one interval, and every test stops its emulators.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> ProviderEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- serving ------------------------------------------------------------------------------------------

    def _next_fault(self) -> Fault | None:
        with self._lock:
            if self._faults:
                return self._faults.pop(0)
            return self._sticky

    @contextmanager
    def _counting_in_flight(self) -> Iterator[None]:
        with self._lock:
            self._in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1

    def _prepare(self, handler: BaseHTTPRequestHandler) -> Callable[[], None]:
        """Read the request, wait the server-side latency and decide the answer; returns what writes it."""
        length = int(handler.headers.get("content-length") or 0)
        raw = handler.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in handler.headers.items()}
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = None
        with self._lock:
            self.requests.append(RecordedRequest(path=handler.path, headers=headers, body=body, raw=raw))

        fault = self._next_fault()
        delay = self.latency + (fault.delay if fault else 0.0)
        if delay:
            time.sleep(delay)  # server-side latency: the thing under test is the client's waiting
        if fault and fault.drop_connection:

            def drop() -> None:
                handler.close_connection = True
                handler.connection.close()

            return drop
        if fault and fault.raw is not None:
            raw_answer = fault.raw
            return lambda: self._send_raw(handler, fault.status or 200, raw_answer, fault.headers, fault)
        if fault and fault.status is not None and fault.status >= 300:
            payload = fault.body if fault.body is not None else self.app.error_body(fault.status, "injected fault")
            error_status = fault.status
            return lambda: self._send(handler, error_status, payload, fault.headers, fault)
        if fault and fault.body is not None:
            fault_body = fault.body
            return lambda: self._send(handler, fault.status or 200, fault_body, fault.headers, fault)

        status, payload, extra_headers = self._answer(
            handler.path, headers, body, ignore_top_n=bool(fault and fault.ignore_top_n)
        )
        if fault and fault.mutate is not None and status == 200:
            payload = fault.mutate(payload)
        headers_out = {**extra_headers, **(fault.headers if fault else {})}
        return lambda: self._send(handler, status, payload, headers_out, fault)

    def _answer(
        self, path: str, headers: dict[str, str], body: Any, *, ignore_top_n: bool = False
    ) -> tuple[int, Any, dict[str, str]]:
        path_only = path.split("?", 1)[0]
        if path_only not in self.app.paths:
            return 404, self.app.error_body(404, f"no route {path_only}"), {}
        if self.api_key is not None and not self.app.authenticated(headers, self.api_key):
            return 401, self.app.error_body(401, "invalid api key"), {}
        if not isinstance(body, dict):
            return 400, self.app.error_body(400, "body must be a JSON object"), {}
        try:
            query, texts, top_n = self.app.read_request(body)
        except RequestRejected as rejected:
            return rejected.status, self.app.error_body(rejected.status, str(rejected)), {}
        if self.max_documents is not None and len(texts) > self.max_documents:
            return 413, self.app.error_body(413, f"too many documents: {len(texts)} > {self.max_documents}"), {}
        scores = [(i, self.scorer(query, text)) for i, text in enumerate(texts)]
        ranked = sorted(scores, key=lambda item: (-item[1], item[0]))
        payload, extra_headers = self.app.respond(body, ranked, texts, None if ignore_top_n else top_n)
        return 200, payload, extra_headers

    @staticmethod
    def _send(
        handler: BaseHTTPRequestHandler,
        status: int,
        payload: Any,
        headers: dict[str, str] | None = None,
        fault: Fault | None = None,
    ) -> None:
        data = json.dumps(payload, allow_nan=True).encode()
        ProviderEmulator._send_raw(handler, status, data, headers or {}, fault)

    @staticmethod
    def _send_raw(
        handler: BaseHTTPRequestHandler, status: int, data: bytes, headers: dict[str, str], fault: Fault | None = None
    ) -> None:
        if fault and fault.head_drip_interval:
            lines = [f"HTTP/1.1 {status} Dripping", "content-type: application/json", f"content-length: {len(data)}"]
            head = "\r\n".join([*lines, *(f"{k}: {v}" for k, v in headers.items()), "", ""]).encode()
            for byte in range(len(head)):
                handler.wfile.write(head[byte : byte + 1])
                handler.wfile.flush()
                time.sleep(fault.head_drip_interval)  # the slowness under test, not synchronization
            handler.wfile.write(data)
            return
        handler.send_response(status)
        handler.send_header("content-type", fault.content_type if fault else "application/json")
        handler.send_header("content-length", str(len(data)))
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.end_headers()
        if fault and fault.cut_after is not None:
            handler.wfile.write(data[: fault.cut_after])
            handler.wfile.flush()
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault and fault.drip_interval:
            for start in range(0, len(data), 4):
                handler.wfile.write(data[start : start + 4])
                handler.wfile.flush()
                time.sleep(fault.drip_interval)  # the slowness under test, not synchronization
            return
        handler.wfile.write(data)


@contextmanager
def emulator(dialect: str, **kwargs: Any) -> Iterator[ProviderEmulator]:
    with ProviderEmulator(dialect, **kwargs) as emu:
        yield emu
