"""Cloud credentials in third-party DEBUG logs: botocore's signer logs the canonical request, which carries the
session token (a signed header), and the string it signs. An application that turns on DEBUG logging (a common
first step when a call fails) must not find its AWS secret or session token in its logs."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from rerank_core import load_reranker
from tests.dialects.test_end_to_end import QUERY
from tests.support.fixtures import StartEmulator

KEY_ID = "AKIDLOGTEST00001"
SECRET = "wJalrXUtnFEMI-logs-SECRET-0123456789"
TOKEN = "IQoJb3JpZ2luX2VjLOGS-session-token-SECRET"
REFRESHED_TOKEN = "IQoJb3JpZ2luX2VjLOGS-refreshed-token-SECRET"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pytest.importorskip("botocore")
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)
    monkeypatch.setenv("AWS_REGION", "us-west-2")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))


@pytest.mark.usefixtures("aws_env")
async def test_botocore_debug_logs_hold_no_aws_secret_or_session_token(
    start_emulator: StartEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, botocore's included
    emu = start_emulator("bedrock", api_key=KEY_ID)
    with load_reranker("bedrock:cohere.rerank-v3-5:0", base_url=emu.base_url) as reranker:
        reranker.rerank(QUERY, ["red apple", "blue sky"])
        await reranker.arerank(QUERY, ["red apple", "blue sky"])
    signer_records = [record for record in caplog.records if record.name.startswith("botocore")]
    assert any("CanonicalRequest" in record.getMessage() for record in signer_records)  # the signer did log
    assert emu.requests[0].headers["x-amz-security-token"] == TOKEN  # and the token was on the wire
    for secret in (SECRET, TOKEN):
        assert secret not in caplog.text
    assert "***" in caplog.text


@pytest.mark.usefixtures("aws_env")
def test_refreshed_credentials_are_scrubbed_too(
    start_emulator: StartEmulator, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.credentials import Credentials

    caplog.set_level(logging.DEBUG)
    emu = start_emulator("bedrock", api_key=KEY_ID)
    with load_reranker("bedrock:cohere.rerank-v3-5:0", base_url=emu.base_url) as reranker:
        reranker.rerank(QUERY, ["red apple", "blue sky"])
        auth = reranker._replicas.replicas[0].auth  # type: ignore[attr-defined]
        auth._credentials = Credentials(KEY_ID, SECRET, REFRESHED_TOKEN)  # what a refresh hands back
        reranker.rerank(QUERY, ["red apple", "blue sky"])
    assert emu.requests[-1].headers["x-amz-security-token"] == REFRESHED_TOKEN
    for secret in (SECRET, TOKEN, REFRESHED_TOKEN):
        assert secret not in caplog.text
