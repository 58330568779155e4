"""Fixtures of the transport tests: a generic-dialect emulator that checks the API key, and a wait recorder."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from tests.core.transport_helpers import API_KEY, RecordedWaits
from tests.support.emulator import ProviderEmulator


@pytest.fixture
def emu(start_emulator: Callable[..., ProviderEmulator]) -> ProviderEmulator:
    return start_emulator("generic", api_key=API_KEY)


@pytest.fixture
def waits() -> RecordedWaits:
    """Stands in for the retry policy's sleeps: the waits are recorded, not slept."""
    return RecordedWaits()
