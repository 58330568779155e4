"""`FallbackReranker`: keep answering when a provider is down, rate-limited or not configured.

Members are tried in order. Only `InvalidInputError` stops the chain: rerank-core raises it before sending anything,
from the caller's input alone, so every member would raise it too. Its subclass `UnsupportedInputError` does not:
it says the input is valid but beyond *this member* (a query longer than a local model's `max_length`, metadata
it would have to send that JSON cannot encode), and the next member may well take it.

Every other `RerankError` hands the call to the next member with a WARNING: outages (connection refused, timeout,
5xx, 429), a malformed answer, and everything that says *this member* is set up wrongly (401/403, a missing key, a
model that fails to load, 404 for a wrong model or endpoint, a redirect). A 400/413/422 moves on too: rerank-core
has already validated the input, so a provider that rejects it is objecting to its own contract (its options,
model, size or length limits; a local member truncates what a hosted one refuses), and another member may well
accept the same documents.

A circuit breaker per member skips one that failed `failure_threshold` times in a row for `cooldown` seconds,
instead of paying its timeout on every call. After the cool-down the member is half-open: exactly one call probes
it, and every other call skips it until that probe answers (a success closes the circuit, a failure opens it for
another cool-down; a probe that ends any other way, cancelled for one, lets the next call probe).

When every member fails, `on_failure="passthrough"` returns the caller's documents in their original order (marked
`passthrough=True`, with a warning logged) instead of raising, so a RAG pipeline keeps answering. Input that every
member refused as unsupported is still raised: no outage is to blame.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from rerank_core import tracing
from rerank_core.base import Normalize, Reranker, Scores, ascore_with, normalized, score_with
from rerank_core.errors import (
    AuthenticationError,
    ConfigurationError,
    InvalidInputError,
    InvalidRequestError,
    ProviderError,
    RerankError,
    UnsupportedInputError,
)
from rerank_core.limits import MAX_COOLDOWN
from rerank_core.models import Document

logger = logging.getLogger("rerank_core")

OnFailure = Literal["raise", "passthrough"]


@dataclass(frozen=True)
class Deferred:
    """A member built on first use, e.g. one whose API key may be set after the chain is created.

    If building fails with a `ConfigurationError` (the key is still missing), the chain moves on and tries to
    build it again on a later call. `label` names the member in logs and errors until it is built. A bare
    zero-argument function given as a member is wrapped in one, labelled with its `__name__`.
    """

    build: Callable[[], Reranker]
    label: str


Member = Reranker | Deferred

FATAL = (InvalidInputError,)
"""Errors about the caller's input, found before any request: every other member would raise them too."""

MEMBER_SPECIFIC = (UnsupportedInputError,)
"""Input errors that only this member has: valid input beyond its own limits, which the next member may take."""

MISCONFIGURED = (ConfigurationError, AuthenticationError, InvalidRequestError)
"""Errors that say a member is set up wrongly (logged as such, so the fix is obvious) rather than down."""


class _Slot:
    """One member, built on first use if deferred, with its circuit-breaker state."""

    def __init__(self, member: Member | Callable[[], Reranker]) -> None:
        if not isinstance(member, Reranker | Deferred):
            if not callable(member):
                raise ConfigurationError(
                    f"a fallback member must be a Reranker, a Deferred or a function that builds one, "
                    f"not {type(member).__name__}"
                )
            member = Deferred(member, label=getattr(member, "__name__", "deferred"))
        self.deferred = member if isinstance(member, Deferred) else None
        self.reranker = member if isinstance(member, Reranker) else None
        self.failures = 0
        self.open_until = 0.0
        self.probing = False
        """True while one call probes a half-open member; every other call skips it meanwhile."""
        self.last_error: RerankError | None = None
        self._build_lock = threading.Lock()

    def get(self) -> Reranker:
        if self.reranker is None:
            with self._build_lock:  # two threads must not build (and leak) two clients
                if self.reranker is None:
                    assert self.deferred is not None
                    self.reranker = self.deferred.build()
        return self.reranker

    def name(self) -> str:
        if self.reranker is None:
            return self.deferred.label if self.deferred else "member"
        return f"{self.reranker.provider}:{self.reranker.model}" if self.reranker.model else self.reranker.provider


class FallbackReranker(Reranker):
    """Tries `members` in order; see the module docstring for when it moves on."""

    provider = "fallback"

    def __init__(
        self,
        members: Sequence[Member | Callable[[], Reranker]],
        *,
        on_failure: OnFailure = "raise",
        failure_threshold: int = 3,
        cooldown: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not members:
            raise ConfigurationError("a fallback chain needs at least one member")
        if on_failure not in ("raise", "passthrough"):
            raise ConfigurationError(f"on_failure must be 'raise' or 'passthrough', not {on_failure!r}")
        if isinstance(failure_threshold, bool) or not isinstance(failure_threshold, int) or failure_threshold < 1:
            raise ConfigurationError(f"failure_threshold must be an integer >= 1, not {failure_threshold!r}")
        if (
            isinstance(cooldown, bool)
            or not isinstance(cooldown, int | float)
            or not math.isfinite(cooldown)
            or not 0 <= cooldown <= MAX_COOLDOWN
        ):
            raise ConfigurationError(
                f"cooldown must be a number of seconds from 0 to {MAX_COOLDOWN:g}, not {cooldown!r}"
            )
        self.slots = [_Slot(member) for member in members]
        self.on_failure = on_failure
        self.failure_threshold = failure_threshold
        self.cooldown = cooldown
        self.clock = clock
        self._lock = threading.Lock()

    @property
    def members(self) -> list[Reranker | None]:
        """The members built so far (None for a deferred member not built yet)."""
        return [slot.reranker for slot in self.slots]

    def __repr__(self) -> str:
        inner = ", ".join(repr(slot.reranker) if slot.reranker else f"Deferred({slot.name()!r})" for slot in self.slots)
        return f"FallbackReranker([{inner}], on_failure={self.on_failure!r})"

    def warm_up(self) -> None:
        """Warm the members built so far; a deferred member (its key is missing) stays deferred."""
        for slot in self.slots:
            if slot.reranker is not None:
                slot.reranker.warm_up()

    def close(self) -> None:
        for slot in self.slots:
            if slot.reranker is not None:
                slot.reranker.close()

    async def aclose(self) -> None:
        for slot in self.slots:
            if slot.reranker is not None:
                await slot.reranker.aclose()

    # -- the chain --------------------------------------------------------------------------------------------

    def _score(self, query: str, documents: list[Document], top_n: int | None) -> Scores:
        return self._chain(query, documents, top_n, None)

    async def _ascore(self, query: str, documents: list[Document], top_n: int | None) -> Scores:
        return await self._achain(query, documents, top_n, None)

    @property
    def accepts_instruction(self) -> bool:
        """True: a member that cannot follow the instruction is passed over for the next one."""
        return True

    def _score_instructed(self, query: str, documents: list[Document], top_n: int | None, instruction: str) -> Scores:
        return self._chain(query, documents, top_n, instruction)

    async def _ascore_instructed(
        self, query: str, documents: list[Document], top_n: int | None, instruction: str
    ) -> Scores:
        return await self._achain(query, documents, top_n, instruction)

    def _chain(self, query: str, documents: list[Document], top_n: int | None, instruction: str | None) -> Scores:
        errors: list[RerankError] = []
        for slot in self.slots:
            probe = self._claim(slot)
            if probe is None:
                continue
            try:
                reranker = slot.get()
                scored = score_with(reranker, query, documents, top_n, instruction)
            except MEMBER_SPECIFIC as error:
                self._passed_over(slot, error, errors)
                continue
            except FATAL:
                raise
            except RerankError as error:
                self._failed(slot, error, errors)
                continue
            else:  # before `finally`: the circuit closes before the probe is released
                return self._succeeded(slot, scored, reranker.normalize)
            finally:
                if probe:
                    self._end_probe(slot)
        return self._all_failed(documents, errors)

    async def _achain(
        self, query: str, documents: list[Document], top_n: int | None, instruction: str | None
    ) -> Scores:
        errors: list[RerankError] = []
        for slot in self.slots:
            probe = self._claim(slot)
            if probe is None:
                continue
            try:
                reranker = slot.get()
                scored = await ascore_with(reranker, query, documents, top_n, instruction)
            except MEMBER_SPECIFIC as error:
                self._passed_over(slot, error, errors)
                continue
            except FATAL:
                raise
            except RerankError as error:
                self._failed(slot, error, errors)
                continue
            else:  # before `finally`: the circuit closes before the probe is released
                return self._succeeded(slot, scored, reranker.normalize)
            finally:
                if probe:
                    self._end_probe(slot)
        return self._all_failed(documents, errors)

    # -- breaker bookkeeping ----------------------------------------------------------------------------------

    def _claim(self, slot: _Slot) -> bool | None:
        """Whether this call may try `slot`: False for a closed circuit, True for the one probe of a half-open
        one, None to skip it (open, or half-open with a probe already in flight)."""
        with self._lock:
            if slot.failures < self.failure_threshold:
                return False
            if slot.open_until <= self.clock() and not slot.probing:
                slot.probing = True
                return True
        logger.debug("rerank fallback: skipping %s, its circuit is open", slot.name())
        return None

    def _end_probe(self, slot: _Slot) -> None:
        with self._lock:
            slot.probing = False

    def _passed_over(self, slot: _Slot, error: RerankError, errors: list[RerankError]) -> None:
        """This input is beyond the member, which is neither down nor misconfigured: its breaker is untouched."""
        errors.append(error)
        tracing.event("rerank.fallback.passed_over", member=slot.name(), error_type=type(error).__name__)
        logger.warning(
            "rerank fallback: %s cannot take this input (%s: %s); trying the next reranker",
            slot.name(),
            type(error).__name__,
            error,
        )

    def _failed(self, slot: _Slot, error: RerankError, errors: list[RerankError]) -> None:
        errors.append(error)
        tracing.event("rerank.fallback.failed", member=slot.name(), error_type=type(error).__name__)
        with self._lock:
            slot.failures += 1
            slot.last_error = error
            tripped = slot.failures >= self.failure_threshold
            if tripped:
                slot.open_until = self.clock() + self.cooldown
        logger.warning(
            "rerank fallback: %s failed (%s: %s)%s%s",
            slot.name(),
            type(error).__name__,
            error,
            "; it looks misconfigured" if isinstance(error, MISCONFIGURED) else "",
            f"; skipping it for {self.cooldown:g} s" if tripped else "; trying the next reranker",
        )

    def _succeeded(self, slot: _Slot, scored: Scores, normalize: Normalize | None) -> Scores:
        with self._lock:
            slot.failures, slot.open_until = 0, 0.0
        tracing.note("rerank.fallback.member", slot.name())
        # Members may differ in normalize; apply each member's own, since this chain has none of its own.
        scored.scores, scored.score_kind = normalized(scored.scores, scored.score_kind, normalize)
        return scored

    def _all_failed(self, documents: list[Document], errors: list[RerankError]) -> Scores:
        if not errors:  # every circuit is open: report why the members were benched
            errors = [slot.last_error for slot in self.slots if slot.last_error is not None]
        summary = "; ".join(f"{type(error).__name__}: {error}" for error in errors)
        # Input that every member refused is the caller's to fix, not an outage to hide: it is raised even with
        # passthrough. One member skipped or down, and the input might have been taken: passthrough applies.
        refused = len(errors) == len(self.slots) and all(isinstance(error, MEMBER_SPECIFIC) for error in errors)
        if self.on_failure == "passthrough" and not refused:
            logger.warning(
                "rerank fallback: every reranker failed, returning %d documents in their original order (%s)",
                len(documents),
                summary,
            )
            # Equal scores: the tie-break by input index keeps the caller's order.
            return Scores(
                scores=dict.fromkeys(range(len(documents)), 0.0), provider="passthrough", model=None, passthrough=True
            )
        last = errors[-1] if errors else None
        error_type = type(last) if last is not None else ProviderError
        raise error_type(
            f"every reranker in the fallback chain failed or is cooling down: {summary or 'no member available'}",
            provider=last.provider if last else self.provider,
            status_code=last.status_code if last else None,
            request_id=last.request_id if last else None,
            hint=last.hint
            if isinstance(last, InvalidInputError)
            else "Check the providers' status and keys, or set on_failure='passthrough' to keep answering",
        ) from last
