"""A private certificate authority for loopback HTTPS servers, for clients that refuse plain HTTP.

Clients trust it the way users trust a corporate CA: through `SSL_CERT_FILE` (httpx, and so rerank-core) or their
own `verify=` argument.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True)
class LoopbackCA:
    ca_file: Path
    """The CA certificate (PEM) a client must trust."""
    server_context: ssl.SSLContext
    """A server context holding a certificate for 127.0.0.1 signed by the CA."""


def loopback_ca(directory: Path) -> LoopbackCA:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca_file = directory / "loopback-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return LoopbackCA(ca_file=ca_file, server_context=context)
