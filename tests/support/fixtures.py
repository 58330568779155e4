"""Fixtures shared by every test folder. Registered from the root conftest.py."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.emulator import ProviderEmulator
from tests.support.transport import API_KEY, RecordedWaits

_real_connect = socket.socket.connect


def _loopback_only(self: socket.socket, address: Any) -> None:
    if self.family in (socket.AF_INET, socket.AF_INET6):
        host = address[0]
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if not loopback:
            raise ConnectionRefusedError(f"tests may only reach loopback, not {host!r}")
    _real_connect(self, address)


@pytest.fixture(autouse=True)
def _no_network_outside_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _loopback_only)


StartEmulator = Callable[..., ProviderEmulator]
"""The type of the `start_emulator` fixture: `start_emulator("cohere", latency=0.05)` gives a running emulator."""


@pytest.fixture
def start_emulator() -> Iterator[StartEmulator]:
    """Start loopback emulators of any dialect; all are stopped after the test."""
    started: list[ProviderEmulator] = []

    def start(dialect: str, **kwargs: Any) -> ProviderEmulator:
        emu = ProviderEmulator(dialect, **kwargs).start()
        started.append(emu)
        return emu

    yield start
    for emu in started:
        emu.stop()


@pytest.fixture(scope="session")
def tiny_cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Directory of a tiny 2-layer BERT cross-encoder with one logit (built once per session, never downloaded)."""
    from tests.support.tiny_models import build_tiny_cross_encoder

    return build_tiny_cross_encoder(tmp_path_factory.mktemp("tiny-ce-1"), num_labels=1)


@pytest.fixture(scope="session")
def tiny_cross_encoder_2label(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Directory of a tiny 2-layer BERT cross-encoder with two labels (label 1 = relevant)."""
    from tests.support.tiny_models import build_tiny_cross_encoder

    return build_tiny_cross_encoder(tmp_path_factory.mktemp("tiny-ce-2"), num_labels=2, seed=1)


@pytest.fixture(scope="module")
def emulator() -> Iterator[ProviderEmulator]:
    """A generic-dialect emulator shared by the tests of one module; it accepts only the API key "k"."""
    with ProviderEmulator("generic", api_key="k") as emu:
        yield emu


@pytest.fixture
def emulator_config(emulator: ProviderEmulator) -> dict[str, Any]:
    """A `load_reranker` config dict for the module's generic emulator."""
    return {"provider": "generic", "model": "m", "base_url": emulator.base_url, "api_key": "k"}


@pytest.fixture(params=["emulator", "local"])
def reranker_spec(request: pytest.FixtureRequest) -> str | dict[str, Any]:
    """Each test runs twice: against the generic emulator and against the tiny local cross-encoder."""
    if request.param == "local":
        return f"local:{request.getfixturevalue('tiny_cross_encoder')}"
    config: dict[str, Any] = request.getfixturevalue("emulator_config")
    return config


@pytest.fixture
def emu(start_emulator: StartEmulator) -> ProviderEmulator:
    """A generic-dialect emulator that checks the API key `tests.support.transport.API_KEY`."""
    return start_emulator("generic", api_key=API_KEY)


@pytest.fixture
def waits() -> RecordedWaits:
    """Stands in for the retry policy's sleeps: the waits are recorded, not slept."""
    return RecordedWaits()
