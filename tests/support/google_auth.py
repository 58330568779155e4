"""A loopback OAuth token endpoint and a service-account key file pointing at it, for Google's ADC flow.

google-auth's service-account credentials sign a JWT with the file's private key and exchange it at the file's
`token_uri` for an access token; here that exchange stays on 127.0.0.1, and each token handed out is recorded.
"""

from __future__ import annotations

import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


class TokenServer:
    """Answers `POST /token` with `ya29.token-<n>`; `lifetimes` sets each token's `expires_in` (then 3600)."""

    def __init__(self, lifetimes: list[int] | None = None, tls: ssl.SSLContext | None = None) -> None:
        self.tls = tls
        self.lifetimes = list(lifetimes or [])
        self.issued: list[str] = []
        self.grants: list[dict[str, list[str]]] = []
        self.fail_with: tuple[int, dict[str, Any]] | None = None
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                self._send(*server._answer(form))

            def do_GET(self) -> None:
                self._send(*server._get(self.path))

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self._thread.start()

    @property
    def token_uri(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{'https' if self.tls else 'http'}://{host!s}:{port}/token"

    def _answer(self, form: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.grants.append(form)
            if self.fail_with is not None:
                return self.fail_with
            token = f"ya29.token-{len(self.issued) + 1}"
            self.issued.append(token)
            lifetime = self.lifetimes.pop(0) if self.lifetimes else 3600
        return 200, {"access_token": token, "expires_in": lifetime, "token_type": "Bearer"}

    def _get(self, path: str) -> tuple[int, dict[str, Any]]:
        return 404, {"error": f"no GET {path} here"}

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def service_account_file(directory: Path, token_uri: str, project: str) -> tuple[Path, str]:
    """A service-account key file with a fresh RSA key; returns the path and the PEM private key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    info = {
        "type": "service_account",
        "project_id": project,
        "private_key_id": "0123456789abcdef",
        "private_key": pem,
        "client_email": f"reranker@{project}.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "token_uri": token_uri,
    }
    path = directory / "service-account.json"
    path.write_text(json.dumps(info))
    return path, pem
