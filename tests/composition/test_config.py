"""One config, every form: spec string, dict, TOML, YAML, JSON, env vars; secrets never dumped."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from rerank_core import (
    CachingReranker,
    ChunkingReranker,
    ConfigurationError,
    FallbackReranker,
    HTTPReranker,
    RerankerConfig,
    TorchCrossEncoder,
    load_reranker,
)
from tests.support.emulator import Fault
from tests.support.fixtures import StartEmulator

SECRET = "sk-super-secret-123"

TOML = """
provider = "generic"
model = "m"
base_url = "{url}"
timeout = 12.5
max_retries = 1
cache = true
long_documents = "chunk"
max_tokens_per_document = 256
on_failure = "passthrough"

[circuit_breaker]
failure_threshold = 4

[[fallback]]
provider = "local"
model = "./my-model"
"""

YAML = """
provider: generic
model: m
base_url: "{url}"
timeout: 12.5
max_retries: 1
cache: true
long_documents: chunk
max_tokens_per_document: 256
on_failure: passthrough
circuit_breaker:
  failure_threshold: 4
fallback:
  - provider: local
    model: ./my-model
"""


def expected(url: str) -> RerankerConfig:
    return RerankerConfig(
        provider="generic",
        model="m",
        base_url=url,
        timeout=12.5,
        max_retries=1,
        cache=True,
        long_documents="chunk",
        max_tokens_per_document=256,
        on_failure="passthrough",
        circuit_breaker={"failure_threshold": 4},  # type: ignore[arg-type]
        fallback=[RerankerConfig(provider="local", model="./my-model")],
    )


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("RERANK_PROVIDER", "RERANK_MODEL", "RERANK_BASE_URL", "RERANK_CONFIG", "RERANK_LOCAL_MODEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RERANK_API_KEY", SECRET)
    return monkeypatch


def test_every_form_gives_the_same_config(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    url = "http://127.0.0.1:9"
    want = expected(url)
    toml_file = tmp_path / "rerank.toml"
    toml_file.write_text(TOML.format(url=url))
    yaml_file = tmp_path / "rerank.yaml"
    yaml_file.write_text(YAML.format(url=url))
    json_file = tmp_path / "rerank.json"
    json_file.write_text(json.dumps(want.model_dump(exclude_unset=True)))
    section = tmp_path / "app.toml"
    section.write_text(
        "[rerank]\n"
        + TOML.format(url=url)
        .replace("[circuit_breaker]", "[rerank.circuit_breaker]")
        .replace("[[fallback]]", "[[rerank.fallback]]")
    )

    forms = [
        RerankerConfig.load(str(toml_file)),
        RerankerConfig.load(yaml_file),
        RerankerConfig.load(str(json_file)),
        RerankerConfig.load(section),
        RerankerConfig.load(want.model_dump()),
        RerankerConfig.load("generic:m").with_overrides(want.model_dump(exclude={"provider", "model"})),
    ]
    clean_env.setenv("RERANK_CONFIG", str(yaml_file))
    forms.append(RerankerConfig.load(None))
    assert all(form == want for form in forms)


def test_spec_string_dict_and_env_vars_build_the_same_reranker(
    start_emulator: StartEmulator, clean_env: pytest.MonkeyPatch
) -> None:
    emu = start_emulator("generic")
    from_spec = load_reranker("generic:rank-1", base_url=emu.base_url)
    from_dict = load_reranker({"provider": "generic", "model": "rank-1", "base_url": emu.base_url})
    from_config = load_reranker(RerankerConfig(provider="generic", model="rank-1", base_url=emu.base_url))
    clean_env.setenv("RERANK_PROVIDER", "generic")
    clean_env.setenv("RERANK_MODEL", "rank-1")
    clean_env.setenv("RERANK_BASE_URL", emu.base_url)
    from_env = load_reranker()

    built = [from_spec, from_dict, from_config, from_env]
    assert all(isinstance(r, HTTPReranker) for r in built)
    assert {(r.provider, r.model, r.base_url, r.timeout) for r in built} == {  # type: ignore[attr-defined]
        ("generic", "rank-1", emu.base_url, 30.0)
    }
    answers = [r.rerank("capital of france", ["paris capital", "berlin", "france"]).results for r in built]
    assert all(answer == answers[0] for answer in answers)
    assert emu.request_count == 4


def test_file_config_builds_the_composed_reranker(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    path = tmp_path / "rerank.toml"
    path.write_text(TOML.format(url="http://127.0.0.1:9"))
    reranker = load_reranker(path)
    assert isinstance(reranker, FallbackReranker)
    assert (reranker.on_failure, reranker.failure_threshold) == ("passthrough", 4)
    primary, backup = reranker.members
    assert isinstance(primary, ChunkingReranker)
    assert primary.max_tokens_per_document == 256
    assert isinstance(primary.inner, CachingReranker)
    assert isinstance(primary.inner.inner, HTTPReranker)
    assert primary.inner.inner.timeout == 12.5
    assert primary.inner.inner.max_retries == 1
    # A fallback member takes the chain-wide long-document settings and shares the cache store.
    assert isinstance(backup, ChunkingReranker)
    assert backup.max_tokens_per_document == 256
    assert isinstance(backup.inner, CachingReranker)
    assert backup.inner.cache is primary.inner.cache
    assert isinstance(backup.inner.inner, TorchCrossEncoder)
    assert backup.inner.inner.model == "./my-model"


def test_nothing_configured_means_the_local_cross_encoder(clean_env: pytest.MonkeyPatch) -> None:
    assert isinstance(load_reranker(), TorchCrossEncoder)
    clean_env.setenv("RERANK_LOCAL_MODEL", "/models/mine")
    reranker = load_reranker(None)
    assert isinstance(reranker, TorchCrossEncoder)
    assert reranker.model == "/models/mine"
    assert load_reranker("local:/other").model == "/other"


def test_local_options_reach_the_cross_encoder(tiny_cross_encoder: str) -> None:
    reranker = load_reranker(
        f"local:{tiny_cross_encoder}", local_files_only=True, activation="none", normalize="sigmoid"
    )
    assert isinstance(reranker, TorchCrossEncoder)
    assert (reranker.activation, reranker.normalize, reranker.local_files_only) == ("none", "sigmoid", True)
    response = reranker.rerank("paris", ["paris is a city", "water"])
    assert response.score_kind == "probability"  # raw logits, normalized by the config's sigmoid


def test_old_keyword_signature_still_works(start_emulator: StartEmulator) -> None:
    emu = start_emulator("generic")
    reranker = load_reranker(
        "generic:m",
        api_key="k",
        base_url=emu.base_url,
        timeout=5.0,
        max_retries=1,
        max_documents_per_request=2,
        max_concurrency=2,
        truncate="end",  # an unknown keyword is a provider option
    )
    assert isinstance(reranker, HTTPReranker)
    assert (reranker.timeout, reranker.max_retries, reranker.max_documents_per_request) == (5.0, 1, 2)
    reranker.rerank("q", ["a", "b", "c"])
    assert emu.request_count == 2
    assert all(request.body["truncate"] == "end" for request in emu.requests)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"provider": "generic", "tiemout": 3}, "tiemout: unknown key"),
        (
            {"provider": "local", "fallback": [{"provider": "generic", "max_retires": 1}]},
            "fallback.0.max_retires: unknown key",
        ),
        ({"provider": "local", "long_documents": "split"}, "long_documents"),
        ({"provider": "local", "timeout": -1}, "timeout"),
        ({"provider": "local", "normalize": "softmax"}, "normalize"),
    ],
)
def test_typos_and_bad_values_fail_clearly(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as caught:
        load_reranker(data)
    assert "Known keys" in str(caught.value)


def test_file_errors_are_configuration_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not found"):
        load_reranker(tmp_path / "missing.toml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("provider: [unclosed\n")
    with pytest.raises(ConfigurationError, match="not valid YAML"):
        load_reranker(broken)
    listing = tmp_path / "list.toml"
    listing.write_text("provider = 3\n")
    with pytest.raises(ConfigurationError, match="provider"):
        load_reranker(listing)


def test_unknown_provider_is_rejected_even_as_a_lazy_fallback_member() -> None:
    with pytest.raises(ConfigurationError, match="unknown provider"):
        load_reranker({"provider": "local", "fallback": [{"provider": "generik"}]})


def test_secrets_never_appear_in_dumps_reprs_or_logs(
    start_emulator: StartEmulator, tmp_path: Path, caplog: pytest.LogCaptureFixture, clean_env: pytest.MonkeyPatch
) -> None:
    emu = start_emulator("generic")
    clean_env.delenv("RERANK_API_KEY")
    data = {
        "provider": "generic",
        "model": "m",
        "base_url": emu.base_url,
        "api_key": SECRET,
        "max_retries": 0,
        "on_failure": "passthrough",
        "fallback": [{"provider": "generic", "model": "m", "base_url": emu.base_url, "api_key": SECRET + "-2"}],
    }
    config = RerankerConfig.load(data)
    with caplog.at_level(logging.DEBUG):
        reranker = load_reranker(data)
        emu.fail_always(Fault(status=503))
        reranker.rerank("q", ["a"])

    texts = [
        repr(config),
        str(config),
        config.model_dump_json(),
        json.dumps(config.model_dump()),
        repr(reranker),
        str(config.with_overrides({"timeout": 3})),
        caplog.text,
    ]
    assert not any(SECRET in text for text in texts)
    assert config.api_key is not None
    assert config.api_key.get_secret_value() == SECRET
    assert config.with_overrides({"timeout": 3}).fallback[0].api_key == config.fallback[0].api_key
    assert emu.requests[0].headers["authorization"] == f"Bearer {SECRET}"
    assert emu.requests[-1].headers["authorization"] == f"Bearer {SECRET}-2"


def test_api_key_env_is_read_at_build_time(
    start_emulator: StartEmulator, tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    emu = start_emulator("generic")
    clean_env.setenv("TEAM_RERANK_KEY", SECRET)
    path = tmp_path / "rerank.yaml"
    path.write_text(f"provider: generic\nmodel: m\nbase_url: {emu.base_url}\napi_key_env: TEAM_RERANK_KEY\n")
    load_reranker(path).rerank("q", ["a"])
    assert emu.requests[0].headers["authorization"] == f"Bearer {SECRET}"
    assert SECRET not in path.read_text() + RerankerConfig.load(path).model_dump_json()


def test_normalize_is_configurable_for_every_member(start_emulator: StartEmulator) -> None:
    nim = start_emulator("nvidia")
    base = {"provider": "nvidia", "model": "nv", "base_url": nim.base_url, "api_key": "k"}
    raw = load_reranker(base).rerank("capital of france", ["paris capital of france", "berlin"])
    normalized = load_reranker({**base, "normalize": "sigmoid"}).rerank(
        "capital of france", ["paris capital of france", "berlin"]
    )
    assert raw.score_kind == "logit"
    assert normalized.score_kind == "probability"
    assert [r.index for r in raw.results] == [r.index for r in normalized.results]
    assert all(0 < r.relevance_score < 1 for r in normalized.results)
    # A threshold of 0.5 now means the same thing as for a probability provider.
    kept = load_reranker({**base, "normalize": "sigmoid"}).rerank(
        "capital of france", ["paris capital of france", "berlin"], score_threshold=0.5
    )
    assert [r.index for r in kept.results] == [0]
