"""The test server itself: a client that opens its whole pool at once must not be turned away.

socketserver's default listen backlog is 5. Past it, Linux drops the handshake and the client waits about a
second for a SYN retry, or reads a reset: the load benchmarks then measured the server, not the client."""

from __future__ import annotations

import socket
from http.server import BaseHTTPRequestHandler

from tests.support.emulator import _Server

POOL = 64


def test_the_emulator_queues_a_whole_pool_of_connections_before_accepting_any() -> None:
    server = _Server(("127.0.0.1", 0), BaseHTTPRequestHandler)  # listening, but nothing accepts yet
    connections: list[socket.socket] = []
    address = ("127.0.0.1", server.server_address[1])
    try:
        for _ in range(POOL):
            # The timeout only bounds a failure: a refused handshake waits for a SYN retry (>= 1 s) and fails.
            connections.append(socket.create_connection(address, timeout=0.9))
        for _ in range(POOL):
            accepted, _address = server.socket.accept()
            accepted.close()
    finally:
        for connection in connections:
            connection.close()
        server.server_close()
    assert len(connections) == POOL
