"""Small helpers shared by the composition tests."""

from __future__ import annotations

import socket
from collections.abc import Callable

from tests.support.emulator import overlap_score


def closed_port_url() -> str:
    """A loopback URL nobody listens on: connecting to it is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def first_words_scorer(limit: int) -> Callable[[str, str], float]:
    """An emulator scorer that, like a real model with a context window, only reads the first `limit` words."""

    def score(query: str, text: str) -> float:
        return overlap_score(query, " ".join(text.split()[:limit]))

    return score


class FakeClock:
    """A clock the test moves by hand, for the circuit breaker's cool-down."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
