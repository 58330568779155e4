"""`Replicas`: the servers of one deployment, and which of them the next request goes to.

Every request (each batch of a fanned-out call, each retry) picks a replica on its own, so pooled keep-alive
connections cannot pin a busy client to one server. The pick is the healthy replica that should answer soonest:
its requests in flight (plus this one) times its recent latency. Replicas within `SIMILAR_WAIT` of the best count
as equal, and among equals the one used longest ago goes first, so equal servers take turns; a replica 25 times
slower than the others gets a request only once they are each about that many requests deep. A retry, and each
half of a batch split after a failure, avoids every replica the batch already failed on while another is usable.

Health is passive, read off real requests, per replica: after `FAILURES_TO_OPEN` failures in a row (no answer, or
a 5xx) the replica's circuit opens and it gets no requests for a cooldown that doubles with each relapse. When the
cooldown is over, the next request goes to it as the only probe; other requests keep away meanwhile. The probe's
success closes the circuit and starts the replica's latency figure afresh; its failure reopens the circuit. If every
replica is open, the one whose cooldown ends first is used: a call is never refused for want of a healthy replica,
and its own retries still apply.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Collection, Iterator, Sequence
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
LATENCY_SLACK = 0.005
"""Seconds added to every latency figure: on a fast network, scheduling noise alone doubles a latency of a
millisecond, and that must not decide where requests go."""
SIMILAR_WAIT = 1.5
"""Replicas whose expected wait is within this factor of the best count as equally good."""


@dataclass(eq=False)
class Replica:
    url: httpx.URL
    """The endpoint, without credentials."""
    shown: str
    """The endpoint as errors, logs and spans show it (scrubbed)."""
    auth: httpx.Auth | None = None
    """Credentials that were in the URL, sent as a header instead."""
    in_flight: int = 0
    answers: int = 0
    latency: float | None = None
    measured_at: float = 0.0
    last_picked: float = 0.0
    failures: int = 0
    """Failures in a row."""
    open_until: float = 0.0
    cooldown: float = 0.0
    """How long the circuit stays open this time (0 while it has not opened since the last success)."""
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
    def use(self, avoid: Collection[Replica] = ()) -> Iterator[Replica]:
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

    def _pick(self, avoid: Collection[Replica]) -> tuple[Replica, bool]:
        now = time.monotonic()
        with self._lock:
            if len(self.replicas) == 1:
                chosen = self.replicas[0]
            else:
                usable = [r for r in self.replicas if not r.is_open(now)] or [
                    min(self.replicas, key=lambda r: r.open_until)
                ]
                if avoid and len(usable) > 1:
                    usable = [r for r in usable if r not in avoid] or usable
                due = [r for r in usable if r.failures >= FAILURES_TO_OPEN]  # cooldown over, no probe out yet
                if due:
                    chosen = due[0]  # else the latency figures of its failures could keep it away for long
                else:
                    waits = _expected_waits(usable, now)
                    best = min(waits)
                    equal = [r for r, wait in zip(usable, waits, strict=True) if wait <= best * SIMILAR_WAIT]
                    chosen = min(equal, key=lambda r: r.last_picked)
            probe = chosen.failures >= FAILURES_TO_OPEN and not chosen.probing
            if probe:
                chosen.probing = True  # its cooldown is over (or nothing else is left): this request tests it
            chosen.in_flight += 1
            chosen.last_picked = now
            return chosen, probe

    def report(self, replica: Replica, healthy: bool | None, elapsed: float) -> None:
        """One request's outcome: answered by a working server (True), failed (False), or no news (None)."""
        if healthy is None:
            return
        with self._lock:
            now = time.monotonic()
            if healthy and replica.answers == 0:
                # The first answer also paid for opening a connection: it says little about the replica's speed.
                replica.answers = 1
                replica.failures = 0
                replica.cooldown = 0.0
            elif healthy:
                replica.answers += 1
                # A replica back from an open circuit is judged by how it answers now, not by its failures.
                before = None if replica.failures >= FAILURES_TO_OPEN else replica.recent_latency(now)
                replica.latency = (
                    elapsed if before is None else (1 - LATENCY_WEIGHT) * before + LATENCY_WEIGHT * elapsed
                )
                replica.failures = 0
                replica.cooldown = 0.0
            else:
                was_open = replica.failures >= FAILURES_TO_OPEN
                replica.failures += 1
                replica.latency = max(replica.latency or 0.0, elapsed)
                if replica.failures >= FAILURES_TO_OPEN:
                    # A failed probe doubles the wait: a server that is still down is left alone for longer.
                    again = min(replica.cooldown * 2, LONGEST_COOLDOWN)
                    replica.cooldown = again if was_open else FIRST_COOLDOWN
                    replica.open_until = now + replica.cooldown
            replica.measured_at = now

    def after_fork_in_child(self) -> None:
        """The parent's requests in flight are not the child's; health and latency still hold."""
        self._lock = threading.Lock()
        for replica in self.replicas:
            replica.in_flight = 0
            replica.probing = False


def _expected_waits(replicas: Sequence[Replica], now: float) -> list[float]:
    """How soon each replica should answer one more request; a replica with no recent figure is taken to be as
    fast as the fastest, so that it gets tried."""
    known = [latency for r in replicas if (latency := r.recent_latency(now)) is not None]
    fastest = min(known, default=0.0)
    waits = []
    for replica in replicas:
        latency = replica.recent_latency(now)
        waits.append((replica.in_flight + 1) * ((fastest if latency is None else latency) + LATENCY_SLACK))
    return waits
