"""Config rules from issue 12: fail-open with one provider, no silently ignored key, bounded values, shared files."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest

from rerank_core import ConfigurationError, FallbackReranker, HTTPReranker, RerankerConfig, load_reranker
from rerank_core.limits import MAX_CONCURRENCY, MAX_COOLDOWN, MAX_RETRIES, MAX_TIMEOUT
from tests.composition.helpers import closed_port_url
from tests.support.emulator import Fault
from tests.support.fixtures import StartEmulator

DOCS = ["alpha", "beta", "gamma"]
LOCAL = {"provider": "local"}


def one(url: str, **extra: object) -> dict[str, object]:
    return {"provider": "generic", "model": "m", "base_url": url, "api_key": "k", "max_retries": 0, **extra}


def test_passthrough_fails_open_with_a_single_provider_that_is_down(caplog: pytest.LogCaptureFixture) -> None:
    reranker = load_reranker(one(closed_port_url(), on_failure="passthrough"))
    with caplog.at_level(logging.WARNING, logger="rerank_core"):
        response = reranker.rerank("q", DOCS, top_n=2)
    assert response.passthrough
    assert [r.document.text for r in response.results] == ["alpha", "beta"]
    assert [d.index for d in response.dropped] == [2]
    assert "original order" in caplog.text


async def test_passthrough_fails_open_with_a_single_provider_async(start_emulator: StartEmulator) -> None:
    emu = start_emulator("generic")
    emu.fail_always(Fault(status=503))
    reranker = load_reranker(one(emu.base_url, on_failure="passthrough"))
    response = await reranker.arerank("q", DOCS)
    assert response.passthrough
    assert [r.index for r in response.results] == [0, 1, 2]
    emu.fail_always(None)
    healthy = await reranker.arerank("alpha", DOCS)
    assert not healthy.passthrough
    assert healthy.provider == "generic"


def test_passthrough_with_a_missing_key_still_builds_and_fails_open(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    config = one(closed_port_url(), on_failure="passthrough", api_key_env="NO_SUCH_KEY_VAR")
    del config["api_key"]
    assert load_reranker(config).rerank("q", DOCS).passthrough


def test_a_plain_single_provider_is_not_wrapped_in_a_chain(start_emulator: StartEmulator) -> None:
    assert isinstance(load_reranker(one(start_emulator("generic").base_url)), HTTPReranker)


def test_a_circuit_breaker_alone_makes_a_one_member_chain(start_emulator: StartEmulator) -> None:
    reranker = load_reranker(one(start_emulator("generic").base_url, circuit_breaker={"failure_threshold": 2}))
    assert isinstance(reranker, FallbackReranker)
    assert reranker.failure_threshold == 2


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"provider": "generic", "base_url": "http://h", "chunk_overlap": 10},
            "chunk_overlap: used only with long_doc",
        ),
        ({"provider": "generic", "base_url": "http://h", "max_tokens_per_document": 100}, "max_tokens_per_document"),
        ({"provider": "generic", "base_url": "http://h", "cache_size": 10}, "cache_size: sizes the in-memory"),
        ({"provider": "generic", "base_url": "http://h", "cache": "sqlite:///x.db", "cache_size": 10}, "cache_size"),
        ({"provider": "local", "timeout": 5}, "timeout: the local cross-encoder"),
        ({"provider": "local", "base_url": "http://h"}, "base_url: the local"),
        ({"provider": "local", "api_key_env": "X"}, "api_key_env: the local"),
        ({"provider": "generic", "base_url": "http://h", "api_key": "k", "api_key_env": "X"}, "api_key_env: api_key"),
        (
            {
                "provider": "generic",
                "base_url": "http://h",
                "fallback": [{"provider": "local", "on_failure": "passthrough"}],
            },
            "fallback.0.on_failure: applies to the whole chain",
        ),
        (
            {
                "provider": "generic",
                "base_url": "http://h",
                "fallback": [{"provider": "local", "circuit_breaker": {"cooldown": 5}}],
            },
            "fallback.0.circuit_breaker",
        ),
        (
            {"provider": "generic", "base_url": "http://h", "fallback": [{"provider": "local", "chunk_overlap": 5}]},
            "fallback.0.chunk_overlap",
        ),
    ],
)
def test_a_setting_that_would_be_ignored_is_an_error(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_reranker({**data, "api_key": "k"} if data["provider"] != "local" and "api_key_env" not in data else data)


def test_chunk_settings_of_a_member_count_when_the_chain_chunks(start_emulator: StartEmulator) -> None:
    emu = start_emulator("generic")
    load_reranker(
        one(emu.base_url, long_documents="chunk", fallback=[one(emu.base_url, chunk_overlap=5, model="m2")])
    ).close()


def test_runtime_clients_for_the_local_model_are_an_error() -> None:
    with pytest.raises(ConfigurationError, match="headers would be ignored"):
        load_reranker("local", headers={"x-team": "a"})


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("timeout", math.inf),
        ("timeout", math.nan),
        ("timeout", MAX_TIMEOUT + 1),
        ("timeout", True),
        ("max_retries", 10**6),
        ("max_retries", MAX_RETRIES + 1),
        ("max_retries", False),
        ("max_concurrency", MAX_CONCURRENCY + 1),
        ("cache", 1),
        ("cache", 0),
        ("cache", "sqlite:///"),
        ("cache", "redis://x"),
        ("circuit_breaker", {"cooldown": math.inf}),
        ("circuit_breaker", {"cooldown": MAX_COOLDOWN + 1}),
        ("circuit_breaker", {"failure_threshold": True}),
    ],
)
def test_out_of_range_values_are_rejected_naming_the_setting(key: str, value: object) -> None:
    with pytest.raises(ConfigurationError, match=key) as caught:
        RerankerConfig.load({"provider": "generic", key: value})
    assert "Known keys" in str(caught.value)


def test_bounds_themselves_are_accepted() -> None:
    config = RerankerConfig.load(
        {
            "provider": "generic",
            "timeout": MAX_TIMEOUT,
            "max_retries": MAX_RETRIES,
            "max_concurrency": MAX_CONCURRENCY,
            "circuit_breaker": {"cooldown": MAX_COOLDOWN},
        }
    )
    assert config.timeout == MAX_TIMEOUT


def test_unwritable_or_empty_cache_path_is_a_configuration_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(ConfigurationError, match="cache"):
        load_reranker(one("http://127.0.0.1:9", cache=f"sqlite:///{blocker}/sub/scores.db"))
    with pytest.raises(ConfigurationError, match="cache"):
        load_reranker(one("http://127.0.0.1:9", cache=f"sqlite:///{tmp_path}"))  # a directory, not a file


SHARED_TOML = """
[project]
name = "my-app"

[database]
url = "postgres://db"

[rerank]
provider = "generic"
model = "m"
base_url = "http://127.0.0.1:9"

[rerank.circuit_breaker]
failure_threshold = 2

[[rerank.fallback]]
provider = "local"
"""


def test_a_rerank_table_in_a_shared_toml_file_is_read_and_the_rest_ignored(tmp_path: Path) -> None:
    file = tmp_path / "app.toml"
    file.write_text(SHARED_TOML)
    config = RerankerConfig.load(file)
    assert (config.provider, config.model, config.circuit_breaker.failure_threshold) == ("generic", "m", 2)
    assert [member.provider for member in config.fallback] == ["local"]


def test_tool_rerank_in_pyproject_is_read(tmp_path: Path) -> None:
    file = tmp_path / "pyproject.toml"
    file.write_text('[project]\nname = "x"\n\n[tool.ruff]\nline-length = 1\n\n[tool.rerank]\nprovider = "cohere"\n')
    assert RerankerConfig.load(file).provider == "cohere"


def test_top_level_settings_still_read_and_unknown_tables_without_rerank_are_errors(tmp_path: Path) -> None:
    plain = tmp_path / "rerank.toml"
    plain.write_text('provider = "jina"\n')
    assert RerankerConfig.load(plain).provider == "jina"
    other = tmp_path / "other.toml"
    other.write_text('provider = "jina"\n[database]\nurl = "x"\n')
    with pytest.raises(ConfigurationError, match="database: unknown key"):
        RerankerConfig.load(other)


def test_a_config_file_that_is_not_utf8_is_a_configuration_error(tmp_path: Path) -> None:
    file = tmp_path / "latin1.toml"
    file.write_bytes('provider = "café"\n'.encode("latin-1"))
    with pytest.raises(ConfigurationError, match="not UTF-8"):
        load_reranker(file)
    folder = tmp_path / "dir.toml"
    folder.mkdir()
    with pytest.raises(ConfigurationError, match="not found"):
        load_reranker(folder)


def test_a_full_dump_of_a_valid_config_loads_back_and_builds_the_same(start_emulator: StartEmulator) -> None:
    emu = start_emulator("generic")
    config = RerankerConfig.load(one(emu.base_url, fallback=[{"provider": "local"}]))
    dumped = config.model_dump(mode="json")  # every key, at its default: none of them counts as "ignored"
    again = RerankerConfig.load(dumped)
    again.check_used()
    assert again == config.model_copy(update={"api_key": None})
    single = RerankerConfig.load(RerankerConfig.load(one(emu.base_url)).model_dump(mode="json"))
    assert isinstance(load_reranker(single, api_key="k"), HTTPReranker)  # default breaker: no chain
