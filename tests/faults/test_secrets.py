"""Secret probes on config and serialization: a key never shows in a repr, a dump, an error or its traceback."""

from __future__ import annotations

import json
import logging
import pickle
import traceback
from pathlib import Path
from typing import Any

import pytest

from rerank_core import ConfigurationError, RerankerConfig, RerankError, load_reranker
from tests.support.emulator import Fault
from tests.support.fixtures import StartEmulator

SECRET = "sk-probe-7f3a9c1e55"


def everything_about(error: BaseException) -> str:
    """The message, the repr, the full traceback with chained exceptions, and the pickled form."""
    texts = [str(error), repr(error), "".join(traceback.format_exception(error))]
    if isinstance(error, RerankError):
        texts.append(repr(pickle.loads(pickle.dumps(error))))
    for linked in (error.__cause__, error.__context__):
        if linked is not None:
            texts.append(everything_about(linked))
    return "\n".join(texts)


@pytest.mark.parametrize(
    "data",
    [
        {"provider": "generic", "apikey": SECRET},  # misspelt key: pydantic would quote the value
        {"provider": "generic", "api_key": {"value": SECRET}},  # wrong type
        {"provider": "generic", "api_key": [SECRET]},
        {"provider": "generic", "api_key": SECRET, "timeout": "soon"},
        {"provider": "generic", "api_key": SECRET, "api_key_env": "TEAM_KEY"},
        {"provider": "local", "api_key": SECRET},
        {"provider": "generic", "fallback": [{"provider": "cohere", "api_key": SECRET, "tiemout": 1}]},
        {"provider": "generic", "fallback": [{"provider": "cohere", "token": SECRET}]},
        {"provider": "generic", "base_url": "http://127.0.0.1:9", "options": {"api_key": SECRET}},
        {"provider": "generic", "base_url": "http://127.0.0.1:9", "api_key": SECRET, "cache": SECRET},
    ],
)
def test_config_errors_never_quote_the_key(data: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_reranker(data)
    assert SECRET not in everything_about(caught.value)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("bad.yaml", f'provider: generic\napi_key: "{SECRET}\nmodel: [\n'),
        ("bad.yaml", f"provider: generic\napi_key: {SECRET}\n  - nope: [\n"),
        ("bad.toml", f'provider = "generic"\napi_key = "{SECRET}\n'),
        ("bad.toml", f"provider = generic\napi_key = {SECRET}\n"),
        ("bad.json", f'{{"provider": "generic", "api_key": "{SECRET}",}}'),
        ("bad.json", f'{{"api_key": {SECRET}}}'),
        ("typo.yaml", f"provider: generic\napi-key: {SECRET}\n"),
    ],
)
def test_broken_config_files_never_quote_the_key(tmp_path: Path, name: str, text: str) -> None:
    file = tmp_path / name
    file.write_text(text)
    with pytest.raises(ConfigurationError) as caught:
        RerankerConfig.load(file)
    shown = everything_about(caught.value)
    assert SECRET not in shown
    assert str(file) in shown


def test_parse_errors_still_say_where(tmp_path: Path) -> None:
    file = tmp_path / "bad.json"
    file.write_text('{\n  "provider": "generic",\n}')
    with pytest.raises(ConfigurationError, match="line 3, column 1"):
        RerankerConfig.load(file)


def test_dumps_and_reprs_of_a_chain_hold_no_key(
    start_emulator: StartEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    emu, backup = start_emulator("generic"), start_emulator("generic")
    emu.fail_always(Fault(status=401, body={"error": {"message": f"bad key {SECRET}"}}))  # echoes the key it got
    backup.fail_always(Fault(status=401, body={"error": {"message": f"bad key {SECRET}-b"}}))
    data = {
        "provider": "generic",
        "model": "a",
        "base_url": emu.base_url,
        "api_key": SECRET,
        "max_retries": 0,
        "cache": True,
        "on_failure": "passthrough",
        "fallback": [{"provider": "generic", "model": "b", "base_url": backup.base_url, "api_key": SECRET + "-b"}],
    }
    config = RerankerConfig.load(data)
    with caplog.at_level(logging.DEBUG):
        reranker = load_reranker(data)
        assert reranker.rerank("q", ["a"]).passthrough
    texts = [
        repr(config),
        str(config),
        config.model_dump_json(),
        json.dumps(config.model_dump(mode="json")),
        json.dumps(config.model_dump(exclude_unset=True, mode="json")),
        repr(config.fallback[0]),
        repr(reranker),
        str(config.with_overrides({"timeout": 3})),
        caplog.text,
    ]
    assert [text for text in texts if SECRET in text] == []
    assert emu.requests[0].headers["authorization"] == f"Bearer {SECRET}"  # it was used, just never shown


def test_failed_chain_error_holds_no_key(start_emulator: StartEmulator) -> None:
    emu = start_emulator("generic")
    emu.fail_always(Fault(status=403, body={"error": {"message": f"key {SECRET} revoked"}}))
    reranker = load_reranker(
        {
            "provider": "generic",
            "model": "a",
            "base_url": emu.base_url,
            "api_key": SECRET,
            "max_retries": 0,
            "fallback": [{"provider": "generic", "model": "b", "base_url": emu.base_url, "api_key": SECRET}],
        }
    )
    with pytest.raises(RerankError) as caught:
        reranker.rerank("q", ["a"])
    assert SECRET not in everything_about(caught.value)
