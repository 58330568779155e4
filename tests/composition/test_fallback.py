"""Fallback chains against real loopback emulators that go down mid-run."""

from __future__ import annotations

import logging

import pytest

from rerank_core import (
    ConfigurationError,
    FallbackReranker,
    HTTPReranker,
    InvalidInputError,
    InvalidRequestError,
    ProviderError,
    RateLimitError,
    Reranker,
    RerankTimeoutError,
    Scores,
    load_reranker,
)
from rerank_core.models import Document
from tests.composition.helpers import FakeClock, closed_port_url
from tests.support.emulator import Fault, ProviderEmulator
from tests.support.fixtures import StartEmulator

QUERY = "capital of france"
DOCS = ["berlin is in germany", "paris is the capital of france", "the capital city", "bread and water"]


def member(emu_or_url: ProviderEmulator | str, model: str, **kwargs: object) -> HTTPReranker:
    base_url = emu_or_url if isinstance(emu_or_url, str) else emu_or_url.base_url
    settings: dict[str, object] = {"api_key": "k", "max_retries": 0, "timeout": 5.0, **kwargs}
    return HTTPReranker("generic", model=model, base_url=base_url, **settings)  # type: ignore[arg-type]


def chain_config(primary: str, backup: str, **extra: object) -> dict[str, object]:
    return {
        "provider": "generic",
        "model": "primary-m",
        "base_url": primary,
        "api_key": "k",
        "max_retries": 0,
        "fallback": [{"provider": "generic", "model": "backup-m", "base_url": backup, "api_key": "k2"}],
        **extra,
    }


def test_primary_answers_while_it_is_up_then_backup_after_it_stops(start_emulator: StartEmulator) -> None:
    primary, backup = start_emulator("generic"), start_emulator("generic")
    reranker = load_reranker(chain_config(primary.base_url, backup.base_url))

    first = reranker.rerank(QUERY, DOCS)
    assert (first.provider, first.model) == ("generic", "primary-m")
    assert backup.request_count == 0

    # The provider goes away: its open keep-alive connection is dropped and new connections are refused.
    primary.fail_always(Fault(drop_connection=True))
    primary.stop()
    second = reranker.rerank(QUERY, DOCS)
    assert (second.provider, second.model) == ("generic", "backup-m")
    assert [r.index for r in second.results] == [r.index for r in first.results]
    assert backup.request_count == 1


@pytest.mark.parametrize(
    "fault",
    [Fault(status=503), Fault(status=429, headers={"retry-after": "0"}), Fault(drop_connection=True)],
    ids=["5xx", "429", "dropped-connection"],
)
def test_moves_on_from_provider_failures(start_emulator: StartEmulator, fault: Fault) -> None:
    primary, backup = start_emulator("generic"), start_emulator("generic")
    primary.fail_always(fault)
    reranker = FallbackReranker([member(primary, "primary-m"), member(backup, "backup-m")])

    response = reranker.rerank(QUERY, DOCS, top_n=2)

    assert response.model == "backup-m"
    assert primary.request_count == 1
    assert backup.request_count == 1
    assert response.results[0].document.text == "paris is the capital of france"


def test_moves_on_from_a_timeout(start_emulator: StartEmulator) -> None:
    slow, backup = start_emulator("generic"), start_emulator("generic")
    slow.fail_always(Fault(delay=1.0))
    reranker = FallbackReranker([member(slow, "slow-m", timeout=0.2), member(backup, "backup-m")])

    assert reranker.rerank(QUERY, DOCS).model == "backup-m"


def test_moves_on_from_a_refused_connection() -> None:
    with ProviderEmulator("generic") as backup:
        reranker = FallbackReranker([member(closed_port_url(), "down-m"), member(backup, "backup-m")])
        assert reranker.rerank(QUERY, DOCS).model == "backup-m"


@pytest.mark.parametrize(
    "fault",
    [
        Fault(status=400),
        Fault(status=404),
        Fault(status=422),
        Fault(status=401),
        Fault(status=301, body={}, headers={"location": "http://127.0.0.1:9/elsewhere"}),
    ],
    ids=["400", "404", "422", "401", "redirect"],
)
def test_a_member_that_rejects_the_request_is_passed_over_loudly(
    start_emulator: StartEmulator, fault: Fault, caplog: pytest.LogCaptureFixture
) -> None:
    primary, backup = start_emulator("generic"), start_emulator("generic")
    primary.fail_always(fault)
    reranker = FallbackReranker([member(primary, "primary-m"), member(backup, "backup-m")])

    with caplog.at_level(logging.WARNING, logger="rerank_core"):
        response = reranker.rerank(QUERY, DOCS)
    assert response.model == "backup-m"
    assert backup.request_count == 1
    warning = next(r for r in caplog.records if "primary-m" in r.getMessage())
    assert warning.levelno == logging.WARNING
    assert "looks misconfigured" in warning.getMessage()
    assert str(fault.status) in warning.getMessage()


def test_a_request_every_member_rejects_raises_the_last_error(start_emulator: StartEmulator) -> None:
    primary, backup = start_emulator("generic"), start_emulator("generic")
    primary.fail_always(Fault(status=400))
    backup.fail_always(Fault(status=422))
    reranker = FallbackReranker([member(primary, "primary-m"), member(backup, "backup-m")])
    with pytest.raises(InvalidRequestError, match="every reranker") as caught:
        reranker.rerank(QUERY, DOCS)
    assert caught.value.status_code == 422


def test_bad_caller_input_stops_the_chain_before_any_request(start_emulator: StartEmulator) -> None:
    primary, backup = start_emulator("generic"), start_emulator("generic")
    sends_metadata = {"options": {"send_metadata": True}}
    reranker = FallbackReranker(
        [member(primary, "primary-m", **sends_metadata), member(backup, "backup-m", **sends_metadata)],
        on_failure="passthrough",
    )
    with pytest.raises(InvalidInputError, match="NaN"):
        reranker.rerank(QUERY, [Document(text="x", metadata={"v": float("nan")})] * 2)  # unencodable as JSON
    assert (primary.request_count, backup.request_count) == (0, 0)


class _BrokenLocal(Reranker):
    """A member whose model cannot load: the local engine raises ConfigurationError on first use."""

    provider = "local"

    def _score(self, query: str, documents: list[Document], top_n: int | None) -> Scores:
        raise ConfigurationError("model folder has no tokenizer files", provider="local", hint="Re-export it")

    async def _ascore(self, query: str, documents: list[Document], top_n: int | None) -> Scores:
        return self._score(query, documents, top_n)


async def test_a_member_whose_model_fails_to_load_is_passed_over(start_emulator: StartEmulator) -> None:
    backup = start_emulator("generic")
    reranker = FallbackReranker([_BrokenLocal(), member(backup, "backup-m")])
    assert reranker.rerank(QUERY, DOCS).model == "backup-m"
    assert (await reranker.arerank(QUERY, DOCS)).model == "backup-m"


def test_a_member_without_its_key_is_skipped_until_the_key_appears(
    start_emulator: StartEmulator, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    primary, backup = start_emulator("generic"), start_emulator("generic")
    monkeypatch.delenv("MY_PRIMARY_KEY", raising=False)
    config = chain_config(primary.base_url, backup.base_url)
    del config["api_key"]
    config["api_key_env"] = "MY_PRIMARY_KEY"

    reranker = load_reranker(config)  # building the chain does not fail on the missing key
    assert "Deferred('generic:primary-m')" in repr(reranker)
    with caplog.at_level(logging.WARNING, logger="rerank_core"):
        assert reranker.rerank(QUERY, DOCS).model == "backup-m"
    assert primary.request_count == 0
    assert "generic:primary-m failed (ConfigurationError" in caplog.text
    assert "MY_PRIMARY_KEY" in caplog.text

    monkeypatch.setenv("MY_PRIMARY_KEY", "now-set")
    assert reranker.rerank(QUERY, DOCS).model == "primary-m"
    assert primary.requests[-1].headers["authorization"] == "Bearer now-set"


def test_a_single_reranker_without_its_key_fails_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MY_PRIMARY_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="MY_PRIMARY_KEY"):
        load_reranker({"provider": "generic", "base_url": "http://127.0.0.1:1", "api_key_env": "MY_PRIMARY_KEY"})


def test_breaker_skips_a_dead_member_for_the_cooldown_then_probes_it(start_emulator: StartEmulator) -> None:
    primary, backup = start_emulator("generic"), start_emulator("generic")
    primary.fail_always(Fault(status=503))
    clock = FakeClock()
    reranker = FallbackReranker(
        [member(primary, "primary-m"), member(backup, "backup-m")], failure_threshold=2, cooldown=30, clock=clock
    )

    for _ in range(5):
        assert reranker.rerank(QUERY, DOCS).model == "backup-m"
    assert primary.request_count == 2  # two failures opened the circuit; three calls skipped it

    clock.advance(31)
    primary.fail_always(None)  # the provider is back
    assert reranker.rerank(QUERY, DOCS).model == "primary-m"
    assert primary.request_count == 3


def test_breaker_reopens_when_the_probe_fails(start_emulator: StartEmulator) -> None:
    primary, backup = start_emulator("generic"), start_emulator("generic")
    primary.fail_always(Fault(status=502))
    clock = FakeClock()
    reranker = FallbackReranker(
        [member(primary, "primary-m"), member(backup, "backup-m")], failure_threshold=1, cooldown=10, clock=clock
    )
    reranker.rerank(QUERY, DOCS)
    clock.advance(11)
    reranker.rerank(QUERY, DOCS)  # the probe fails ...
    reranker.rerank(QUERY, DOCS)  # ... so this call skips the primary again
    assert primary.request_count == 2
    assert backup.request_count == 3


def test_breaker_settings_come_from_the_config(start_emulator: StartEmulator) -> None:
    primary, backup = start_emulator("generic"), start_emulator("generic")
    config = chain_config(primary.base_url, backup.base_url, circuit_breaker={"failure_threshold": 5, "cooldown": 2.5})
    reranker = load_reranker(config)
    assert isinstance(reranker, FallbackReranker)
    assert (reranker.failure_threshold, reranker.cooldown) == (5, 2.5)


def test_passthrough_returns_every_document_in_original_order(
    start_emulator: StartEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    primary, backup = start_emulator("generic"), start_emulator("generic")
    primary.fail_always(Fault(status=500))
    backup.fail_always(Fault(status=429, headers={"retry-after": "0"}))
    docs = [Document(text=t, id=f"d{i}", metadata={"n": i}) for i, t in enumerate(DOCS)]
    reranker = load_reranker(chain_config(primary.base_url, backup.base_url, on_failure="passthrough"))

    with caplog.at_level(logging.WARNING, logger="rerank_core"):
        full = reranker.rerank(QUERY, docs, score_threshold=0.9)
        cut = reranker.rerank(QUERY, docs, top_n=2)

    assert full.passthrough
    assert cut.passthrough
    assert [r.document for r in full.results] == docs  # every document, original order, ids and metadata intact
    assert [r.index for r in cut.results] == [0, 1]
    assert [(d.index, d.reason) for d in cut.dropped] == [(2, "top_n"), (3, "top_n")]
    assert any("original order" in record.getMessage() for record in caplog.records)


def test_raise_when_every_member_fails_keeps_the_error_type(start_emulator: StartEmulator) -> None:
    primary, backup = start_emulator("generic"), start_emulator("generic")
    primary.fail_always(Fault(status=503))
    backup.fail_always(Fault(status=429, headers={"retry-after": "0"}))
    reranker = FallbackReranker([member(primary, "primary-m"), member(backup, "backup-m")])

    with pytest.raises(RateLimitError) as caught:
        reranker.rerank(QUERY, DOCS)
    assert "ProviderError" in str(caught.value)
    assert "HTTP 429" in str(caught.value)


def test_with_every_circuit_open_no_request_is_sent(start_emulator: StartEmulator) -> None:
    primary = start_emulator("generic")
    primary.fail_always(Fault(status=503))
    reranker = FallbackReranker([member(primary, "primary-m")], failure_threshold=1, clock=FakeClock())
    for _ in range(3):
        with pytest.raises(ProviderError, match="cooling down"):
            reranker.rerank(QUERY, DOCS)
    assert primary.request_count == 1


async def test_async_chain_moves_on_and_passes_through(start_emulator: StartEmulator) -> None:
    primary, backup = start_emulator("generic"), start_emulator("generic")
    reranker = load_reranker(chain_config(primary.base_url, backup.base_url, on_failure="passthrough"))
    assert (await reranker.arerank(QUERY, DOCS)).model == "primary-m"

    primary.fail_always(Fault(status=503))
    assert (await reranker.arerank(QUERY, DOCS)).model == "backup-m"

    backup.fail_always(Fault(drop_connection=True))
    backup.stop()
    response = await reranker.arerank(QUERY, DOCS, top_n=3)
    assert response.passthrough
    assert [r.index for r in response.results] == [0, 1, 2]
    await reranker.aclose()


async def test_async_timeout_moves_on(start_emulator: StartEmulator) -> None:
    slow, backup = start_emulator("generic"), start_emulator("generic")
    slow.fail_always(Fault(delay=1.0))
    reranker = FallbackReranker([member(slow, "slow-m", timeout=0.2), member(backup, "backup-m")])
    assert (await reranker.arerank(QUERY, DOCS)).model == "backup-m"


def test_each_member_applies_its_own_normalize(start_emulator: StartEmulator) -> None:
    generic, nim = start_emulator("generic"), start_emulator("nvidia")
    generic.fail_always(Fault(status=503))
    config = {
        "provider": "generic",
        "model": "m",
        "base_url": generic.base_url,
        "api_key": "k",
        "max_retries": 0,
        "fallback": [
            {"provider": "nvidia", "model": "nv-m", "base_url": nim.base_url, "api_key": "k", "normalize": "sigmoid"}
        ],
    }
    response = load_reranker(config).rerank(QUERY, DOCS)
    assert response.provider == "nvidia"
    assert response.score_kind == "probability"
    assert all(0 < r.relevance_score < 1 for r in response.results)

    raw = load_reranker({**config, "fallback": [{**config["fallback"][0], "normalize": None}]}).rerank(QUERY, DOCS)  # type: ignore[index]
    assert raw.score_kind == "logit"
    assert any(r.relevance_score < 0 for r in raw.results)


class Broken(Reranker):
    """A backend with a bug: a non-rerank exception must not be swallowed as a provider failure."""

    def _score(self, query: str, documents: list[Document], top_n: int | None) -> Scores:
        raise KeyError("bug")

    async def _ascore(self, query: str, documents: list[Document], top_n: int | None) -> Scores:
        raise KeyError("bug")


def test_bugs_are_not_mistaken_for_provider_failures(start_emulator: StartEmulator) -> None:
    backup = start_emulator("generic")
    reranker = FallbackReranker([Broken(), member(backup, "backup-m")], on_failure="passthrough")
    with pytest.raises(KeyError):
        reranker.rerank(QUERY, DOCS)
    assert backup.request_count == 0


def test_timeout_error_type_is_kept_when_the_only_member_times_out(start_emulator: StartEmulator) -> None:
    slow = start_emulator("generic")
    slow.fail_always(Fault(delay=1.0))
    with pytest.raises(RerankTimeoutError):
        FallbackReranker([member(slow, "slow-m", timeout=0.2)]).rerank(QUERY, DOCS)


@pytest.mark.parametrize(
    "settings",
    [
        {"cooldown": float("inf")},
        {"cooldown": float("nan")},
        {"cooldown": -1},
        {"cooldown": 10**9},
        {"failure_threshold": 0},
        {"failure_threshold": True},
        {"failure_threshold": 2.5},
    ],
)
def test_breaker_settings_are_bounded_in_code_too(settings: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError, match=next(iter(settings))):
        FallbackReranker([member(closed_port_url(), "m")], **settings)  # type: ignore[arg-type]


def test_a_bare_function_member_is_built_on_first_use_and_named_after_itself(start_emulator: StartEmulator) -> None:
    emu = start_emulator("generic")
    built: list[str] = []

    def backup_builder() -> Reranker:
        built.append("backup")
        return member(emu, "backup-m")

    with FallbackReranker([member(closed_port_url(), "primary-m"), backup_builder]) as chain:
        assert built == []
        assert "backup_builder" in repr(chain)
        response = chain.rerank(QUERY, DOCS)
    assert built == ["backup"]
    assert response.model == "backup-m"


@pytest.mark.parametrize("not_a_member", ["generic:model", 42, None])
def test_a_member_that_is_no_reranker_is_a_configuration_error(not_a_member: object) -> None:
    with pytest.raises(ConfigurationError, match="a fallback member must be a Reranker, a Deferred or a function"):
        FallbackReranker([not_a_member])  # type: ignore[list-item]
