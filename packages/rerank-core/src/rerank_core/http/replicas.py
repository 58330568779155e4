"""`Replicas`: the servers of one deployment, and which of them the next request goes to.

Every request (each batch of a fanned-out call, each retry) picks a replica on its own, so pooled keep-alive
connections cannot pin a busy client to one server. The pick is the least busy healthy replica: fewest requests
in flight, then the lower recent latency (replicas within a factor of two count as equally fast, and among equals
the one used longest ago goes first, so equal servers share the load evenly). A retry avoids the replica that just
failed when another is usable.

Health is passive, read off real requests, per replica: after `FAILURES_TO_OPEN` failures in a row (no answer, or
a 5xx) the replica's circuit opens and it gets no requests for a cooldown that doubles with each relapse. When the
cooldown is over, exactly one request probes it; its success closes the circuit, its failure reopens it, and other
requests keep away meanwhile. If every replica is open, the one whose cooldown ends first is used: a call is never
refused for want of a healthy replica, and its own retries still apply.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

FAILURES_TO_OPEN = 3
FIRST_COOLDOWN = 1.0
LONGEST_COOLDOWN = 30.0
LATENCY_WEIGHT = 0.3
"""Weight of the newest sample in a replica's moving average of latency."""
LATENCY_MEMORY = 30.0
"""Seconds after which a replica's latency figure is forgotten: a server slow once is tried again, not shunned."""
SIMILAR_LATENCY = 2.0
"""Replicas within this factor of the fastest count as equally fast."""


@dataclass(eq=False)
class Replica:
    url: httpx.URL
    """The endpoint, without credentials."""
    shown: str
    """The endpoint as errors, logs and spans show it (scrubbed)."""
    auth: httpx.Auth | None = None
    """Credentials that were in the URL, sent as a header instead."""
    in_flight: int = 0
    latency: float | None = None
    measured_at: float = 0.0
    last_picked: float = 0.0
    failures: int = 0
    """Failures in a row."""
    open_until: float = 0.0
    cooldown: float = FIRST_COOLDOWN
    probing: bool = False
    """A request is testing whether this replica is back; others keep away until it answers."""

    def is_open(self, now: float) -> bool:
        return self.failures >= FAILURES_TO_OPEN and (now < self.open_until or self.probing)

    def recent_latency(self, now: float) -> float | None:
        return self.latency if now - self.measured_at < LATENCY_MEMORY else None


class Replicas:
    def __init__(self, replicas: Sequence[Replica]) -> None:
        self.replicas = list(replicas)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.replicas)

    @contextmanager
    def use(self, avoid: Replica | None = None) -> Iterator[Replica]:
        """Pick a replica for one request and count it as in flight for the block; the caller reports the
        outcome with `report` before the block ends."""
        replica, probe = self._pick(avoid)
        try:
            yield replica
        finally:
            with self._lock:
                replica.in_flight -= 1
                if probe:
                    replica.probing = False

    def _pick(self, avoid: Replica | None) -> tuple[Replica, bool]:
        now = time.monotonic()
        with self._lock:
            if len(self.replicas) == 1:
                chosen = self.replicas[0]
            else:
                usable = [r for r in self.replicas if not r.is_open(now)] or [
                    min(self.replicas, key=lambda r: r.open_until)
                ]
                if avoid is not None and len(usable) > 1:
                    usable = [r for r in usable if r is not avoid] or usable
                chosen = min(usable, key=lambda r: self._busyness(r, usable, now))
            probe = chosen.failures >= FAILURES_TO_OPEN and not chosen.probing
            if probe:
                chosen.probing = True  # its cooldown is over (or nothing else is left): this request tests it
            chosen.in_flight += 1
            chosen.last_picked = now
            return chosen, probe

    def _busyness(self, replica: Replica, among: list[Replica], now: float) -> tuple[int, bool, float]:
        known = [latency for r in among if (latency := r.recent_latency(now)) is not None]
        latency = replica.recent_latency(now)
        slow = latency is not None and bool(known) and latency > SIMILAR_LATENCY * min(known)
        return replica.in_flight, slow, replica.last_picked

    def report(self, replica: Replica, healthy: bool | None, elapsed: float) -> None:
        """One request's outcome: answered by a working server (True), failed (False), or no news (None)."""
        if healthy is None:
            return
        with self._lock:
            now = time.monotonic()
            if healthy:
                before = replica.recent_latency(now)
                replica.latency = (
                    elapsed if before is None else (1 - LATENCY_WEIGHT) * before + LATENCY_WEIGHT * elapsed
                )
                replica.failures = 0
                replica.cooldown = FIRST_COOLDOWN
            else:
                was_open = replica.failures >= FAILURES_TO_OPEN
                replica.failures += 1
                replica.latency = max(replica.latency or 0.0, elapsed)
                if replica.failures >= FAILURES_TO_OPEN:
                    if was_open:  # the probe failed: stay away for longer
                        replica.cooldown = min(replica.cooldown * 2, LONGEST_COOLDOWN)
                    replica.open_until = now + replica.cooldown
            replica.measured_at = now

    def after_fork_in_child(self) -> None:
        """The parent's requests in flight are not the child's; health and latency still hold."""
        self._lock = threading.Lock()
        for replica in self.replicas:
            replica.in_flight = 0
            replica.probing = False
