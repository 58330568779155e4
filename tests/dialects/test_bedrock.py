"""AWS Bedrock end to end against its loopback emulator: ARNs, SigV4 through botocore, caps, errors, the official
client's wire, and credentials that never leak."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.support.emulator import Fault, ProviderEmulator, RecordedRequest, overlap_score
from tests.support.fixtures import StartEmulator
from tests.support.transport import RecordedWaits

from rerank_core import (
    AuthenticationError,
    ConfigurationError,
    HTTPReranker,
    InvalidRequestError,
    RateLimitError,
    load_reranker,
)
from rerank_core.dialects.bedrock import BedrockDialect

botocore = pytest.importorskip("botocore")
from botocore.auth import SigV4Auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402

KEY_ID = "AKIDEXAMPLE0TEST"
SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCY-SECRET"
TOKEN = "IQoJb3JpZ2luX2VjEXAMPLE-session-token-SECRET"
REGION = "eu-central-1"
MODEL = "cohere.rerank-v3-5:0"
ARN = f"arn:aws:bedrock:{REGION}::foundation-model/{MODEL}"
QUERY = "red apple pie"
DOCS = ["blue sky", "red apple", "apple pie red", "red car", "apple tree"]
EXPECTED_ORDER = [2, 1, 3, 4, 0]


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Temporary credentials with a session token, from the environment only (never the machine's ~/.aws)."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_DEFAULT_REGION", "AWS_ROLE_ARN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AWS_WEB_IDENTITY_TOKEN_FILE", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))


def bedrock(emu: ProviderEmulator, **kwargs: Any) -> HTTPReranker:
    reranker = load_reranker(f"bedrock:{MODEL}", base_url=emu.base_url, max_retries=0, **kwargs)
    assert isinstance(reranker, HTTPReranker)
    return reranker


def verify_signature(request: RecordedRequest, credentials: Credentials, method: str = "POST") -> None:
    """Recompute the SigV4 signature of a captured request with botocore, from the headers it says it signed."""
    authorization = request.headers["authorization"]
    algorithm, _, fields = authorization.partition(" ")
    parts = dict(part.strip().split("=", 1) for part in fields.split(","))
    assert algorithm == "AWS4-HMAC-SHA256"
    key_id, date, region, service, terminator = parts["Credential"].split("/")
    assert (key_id, region, service, terminator) == (credentials.access_key, REGION, "bedrock", "aws4_request")
    signed = parts["SignedHeaders"].split(";")
    assert {"host", "x-amz-date", "content-type"} <= set(signed)
    if credentials.token:
        assert "x-amz-security-token" in signed
        assert request.headers["x-amz-security-token"] == credentials.token
    host = request.headers["host"]
    assert request.raw is not None
    replay = AWSRequest(
        method=method,
        url=f"http://{host}{request.path}",
        data=request.raw,
        headers={name: request.headers[name] for name in signed},
    )
    replay.context["timestamp"] = request.headers["x-amz-date"]
    assert request.headers["x-amz-date"].startswith(date)
    signer = SigV4Auth(credentials, "bedrock", REGION)
    expected = signer.signature(signer.string_to_sign(replay, signer.canonical_request(replay)), replay)
    assert parts["Signature"] == expected


def test_a_model_id_becomes_the_foundation_model_arn_of_the_region() -> None:
    dialect = BedrockDialect()
    assert dialect.model_arn(MODEL, {"region": "us-west-2"}) == (
        "arn:aws:bedrock:us-west-2::foundation-model/cohere.rerank-v3-5:0"
    )
    given = "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abc"
    assert dialect.model_arn(given, {}) == given
    assert dialect.model_arn("amazon.rerank-v1:0", {"region": "cn-north-1"}).startswith("arn:aws-cn:bedrock:")


def test_region_sets_the_endpoint_and_options_win_over_the_environment() -> None:
    reranker = load_reranker(f"bedrock:{MODEL}")
    assert isinstance(reranker, HTTPReranker)
    assert reranker.url == f"https://bedrock-agent-runtime.{REGION}.amazonaws.com/rerank"
    other = load_reranker(f"bedrock:{MODEL}", options={"region": "us-west-2"})
    assert isinstance(other, HTTPReranker)
    assert other.url == "https://bedrock-agent-runtime.us-west-2.amazonaws.com/rerank"


def test_no_region_is_a_configuration_error_naming_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION")
    with pytest.raises(ConfigurationError, match="AWS_REGION") as caught:
        load_reranker(f"bedrock:{MODEL}")
    assert caught.value.provider == "bedrock"


def test_a_model_is_required() -> None:
    with pytest.raises(ConfigurationError, match="needs a model"):
        load_reranker("bedrock")


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_end_to_end_signed_with_the_session_token(start_emulator: StartEmulator, mode: str) -> None:
    emu = start_emulator("bedrock", api_key=KEY_ID)
    with bedrock(emu) as reranker:
        if mode == "sync":
            response = reranker.rerank(QUERY, DOCS, top_n=3)
        else:
            response = await reranker.arerank(QUERY, DOCS, top_n=3)
    assert [r.index for r in response.results] == EXPECTED_ORDER[:3]
    assert response.results[0].relevance_score == overlap_score(QUERY, DOCS[2])
    assert (response.provider, response.model, response.score_kind) == ("bedrock", MODEL, "unknown")
    assert response.request_ids == ["emulated-bedrock-0001"]
    request = emu.requests[0]
    assert request.path == "/rerank"
    config = request.body["rerankingConfiguration"]["bedrockRerankingConfiguration"]
    assert config == {"numberOfResults": 3, "modelConfiguration": {"modelArn": ARN}}
    verify_signature(request, Credentials(KEY_ID, SECRET, TOKEN))


def test_without_top_n_every_result_is_asked_for(start_emulator: StartEmulator) -> None:
    emu = start_emulator("bedrock", api_key=KEY_ID)
    with bedrock(emu) as reranker:
        response = reranker.rerank(QUERY, DOCS)
    assert [r.index for r in response.results] == EXPECTED_ORDER
    assert emu.requests[0].body["rerankingConfiguration"]["bedrockRerankingConfiguration"]["numberOfResults"] == 5


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_more_than_1000_sources_are_split_and_merged_globally(start_emulator: StartEmulator, mode: str) -> None:
    emu = start_emulator("bedrock", api_key=KEY_ID)
    docs = [f"filler text {i}" for i in range(2300)]
    docs[1700] = "red apple pie"  # the best document sits in the last batch
    docs[12] = "red apple"
    with bedrock(emu) as reranker:
        if mode == "sync":
            response = reranker.rerank(QUERY, docs, top_n=2)
        else:
            response = await reranker.arerank(QUERY, docs, top_n=2)
    assert sorted(len(r.body["sources"]) for r in emu.requests) == [300, 1000, 1000]
    for request in emu.requests:  # each batch signed over its own body
        verify_signature(request, Credentials(KEY_ID, SECRET, TOKEN))
    assert [r.index for r in response.results] == [1700, 12]


def test_additional_model_request_fields_go_into_the_model_configuration(start_emulator: StartEmulator) -> None:
    emu = start_emulator("bedrock", api_key=KEY_ID)
    extra = {"max_tokens_per_doc": 512}
    with bedrock(emu, options={"additional_model_request_fields": extra}) as reranker:
        reranker.rerank(QUERY, DOCS)
    model_configuration = emu.requests[0].body["rerankingConfiguration"]["bedrockRerankingConfiguration"]
    assert model_configuration["modelConfiguration"]["additionalModelRequestFields"] == extra


@pytest.mark.parametrize(
    ("status", "error_type", "kind"),
    [
        (429, "ThrottlingException", RateLimitError),
        (400, "ValidationException", InvalidRequestError),
        (403, "AccessDeniedException", AuthenticationError),
        (400, "ServiceQuotaExceededException", InvalidRequestError),
        (404, "ResourceNotFoundException", InvalidRequestError),
    ],
)
def test_aws_error_shapes_map_to_typed_errors_and_the_chain_moves_on(
    start_emulator: StartEmulator, status: int, error_type: str, kind: type[Exception]
) -> None:
    emu = start_emulator("bedrock", api_key=KEY_ID)
    backup = start_emulator("cohere")
    message = f"{error_type}: emulated (key {KEY_ID})"
    fault = Fault(status=status, body={"message": message}, headers={"x-amzn-ErrorType": f"{error_type}:http://"})
    emu.fail_always(fault)
    with bedrock(emu) as reranker, pytest.raises(kind) as caught:
        reranker.rerank(QUERY, DOCS)
    error = caught.value
    assert error_type in str(error)
    assert getattr(error, "status_code", None) == status
    assert SECRET not in str(error)
    assert TOKEN not in str(error)
    if kind is AuthenticationError:
        assert "AWS credentials" in str(error)
        assert "api_key" not in str(error)
    chain = load_reranker(
        {
            "provider": "bedrock",
            "model": MODEL,
            "base_url": emu.base_url,
            "max_retries": 0,
            "fallback": [{"provider": "cohere", "model": "m", "base_url": backup.base_url, "api_key": "k-0000"}],
        }
    )
    with chain:
        response = chain.rerank(QUERY, DOCS, top_n=1)
    assert response.provider == "cohere"
    assert response.results[0].index == 2


def test_missing_credentials_fail_typed_and_the_chain_moves_on(
    start_emulator: StartEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    emu = start_emulator("bedrock", api_key=KEY_ID)
    with bedrock(emu) as reranker, pytest.raises(AuthenticationError, match="no AWS credentials"):
        reranker.rerank(QUERY, DOCS)
    assert emu.request_count == 0
    backup = start_emulator("cohere")
    spec = {"provider": "bedrock", "model": MODEL, "base_url": emu.base_url}
    fallback = [{"provider": "cohere", "model": "m", "base_url": backup.base_url, "api_key": "k-0000"}]
    with load_reranker({**spec, "fallback": fallback}) as chain:
        assert chain.rerank(QUERY, DOCS).provider == "cohere"


CREDENTIAL_PROCESS = """
import datetime, json, pathlib, sys
counter = pathlib.Path(sys.argv[1])
n = int(counter.read_text()) + 1 if counter.exists() else 1
counter.write_text(str(n))
soon = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=5)
print(json.dumps({"Version": 1, "AccessKeyId": "AKIDPROCESS", "SecretAccessKey": "process-secret-%d" % n,
                  "SessionToken": "process-token-%d" % n, "Expiration": soon.isoformat()}))
"""


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_temporary_credentials_are_refreshed_and_every_attempt_is_signed_anew(
    start_emulator: StartEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, mode: str
) -> None:
    # A profile whose credential_process hands out credentials 5 minutes from expiry: inside botocore's
    # refresh window, so each read refreshes them, as near the end of an assumed role's session.
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    script = tmp_path / "credentials.py"
    script.write_text(CREDENTIAL_PROCESS)
    counter = tmp_path / "count"
    config = tmp_path / "config"
    config.write_text(f"[profile rerank]\ncredential_process = {sys.executable} {script} {counter}\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    emu = start_emulator("bedrock", api_key="AKIDPROCESS")
    emu.fail_next(Fault(status=429, body={"message": "Too many requests"}, headers={"retry-after": "0"}))
    waits = RecordedWaits()
    reranker = load_reranker(f"bedrock:{MODEL}", base_url=emu.base_url, max_retries=1, options={"profile": "rerank"})
    assert isinstance(reranker, HTTPReranker)
    reranker.retry_policy = reranker.retry_policy.__class__(max_retries=1, sleep=waits.sleep, asleep=waits.asleep)
    with reranker:
        if mode == "sync":
            response = reranker.rerank(QUERY, ["red apple"])
        else:
            response = await reranker.arerank(QUERY, ["red apple"])
    assert len(response.results) == 1
    first, retry = emu.requests
    tokens = [first.headers["x-amz-security-token"], retry.headers["x-amz-security-token"]]
    assert tokens[0] != tokens[1]
    for request, token in zip((first, retry), tokens, strict=True):
        n = token.rsplit("-", 1)[1]
        verify_signature(request, Credentials("AKIDPROCESS", f"process-secret-{n}", token))
    assert "process-secret" not in repr(reranker)


def test_the_wire_equals_boto3s_bedrock_agent_runtime_client(start_emulator: StartEmulator) -> None:
    boto3 = pytest.importorskip("boto3")
    emu = start_emulator("bedrock", api_key=KEY_ID)
    with bedrock(emu, options={"additional_model_request_fields": {"max_tokens_per_doc": 256}}) as reranker:
        ours = reranker.rerank(QUERY, DOCS, top_n=2)
    client = boto3.client("bedrock-agent-runtime", region_name=REGION, endpoint_url=emu.base_url)
    theirs = client.rerank(
        queries=[{"type": "TEXT", "textQuery": {"text": QUERY}}],
        sources=[
            {"type": "INLINE", "inlineDocumentSource": {"type": "TEXT", "textDocument": {"text": text}}}
            for text in DOCS
        ],
        rerankingConfiguration={
            "type": "BEDROCK_RERANKING_MODEL",
            "bedrockRerankingConfiguration": {
                "numberOfResults": 2,
                "modelConfiguration": {"modelArn": ARN, "additionalModelRequestFields": {"max_tokens_per_doc": 256}},
            },
        },
    )
    ours_request, boto_request = emu.requests
    assert ours_request.path == boto_request.path == "/rerank"
    assert ours_request.body == boto_request.body
    assert ours_request.headers["content-type"] == "application/json"
    assert [(r.index, r.relevance_score) for r in ours.results] == [
        (r["index"], r["relevanceScore"]) for r in theirs["results"]
    ]
    credentials = Credentials(KEY_ID, SECRET, TOKEN)
    verify_signature(boto_request, credentials)  # the verifier accepts the official client's signature
    verify_signature(ours_request, credentials)


def test_credentials_never_appear_in_reprs_configs_logs_or_errors(
    start_emulator: StartEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    emu = start_emulator("bedrock", api_key=KEY_ID)
    emu.fail_next(Fault(status=503, body={"message": "unavailable"}))
    caplog.set_level(logging.DEBUG, logger="rerank_core")
    reranker = load_reranker(f"bedrock:{MODEL}", base_url=emu.base_url, max_retries=1)
    assert isinstance(reranker, HTTPReranker)
    reranker.retry_policy = reranker.retry_policy.__class__(max_retries=1, sleep=lambda _: None)
    with reranker:
        reranker.rerank(QUERY, ["red apple"])
        emu.fail_always(Fault(status=403, body={"message": "The security token included in the request is invalid"}))
        with pytest.raises(AuthenticationError) as caught:
            reranker.rerank(QUERY, ["red apple"])
    seen = " ".join(
        [
            repr(reranker),
            repr(reranker._replicas.replicas[0].auth),
            str(caught.value),
            repr(caught.value),
            caplog.text,
            str(vars(reranker)),
        ]
    )
    assert "retry 1 of 1" in caplog.text
    for secret in (SECRET, TOKEN):
        assert secret not in seen


def test_the_cli_reranks_through_bedrock(start_emulator: StartEmulator, tmp_path: Path) -> None:
    from tests.cli.helpers import run

    emu = start_emulator("bedrock", api_key=KEY_ID)
    docs = tmp_path / "docs.txt"
    docs.write_text("\n".join(DOCS) + "\n")
    done = run(QUERY, str(docs), "--provider", f"bedrock:{MODEL}", "--base-url", emu.base_url, "--format", "json")
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert [row["index"] for row in payload["results"]][:3] == EXPECTED_ORDER[:3]
    assert payload["provider"] == "bedrock"
    verify_signature(emu.requests[0], Credentials(KEY_ID, SECRET, TOKEN))


def test_the_langchain_wrapper_reranks_through_bedrock(start_emulator: StartEmulator) -> None:
    from langchain_core.documents import Document as LangChainDocument

    from rerank_langchain import RerankCompressor

    emu = start_emulator("bedrock", api_key=KEY_ID)
    compressor = RerankCompressor(reranker={"provider": "bedrock", "model": MODEL, "base_url": emu.base_url}, top_n=2)
    ranked = compressor.compress_documents([LangChainDocument(text) for text in DOCS], QUERY)
    assert [doc.page_content for doc in ranked] == [DOCS[2], DOCS[1]]
    assert "SECRET" not in json.dumps(compressor.model_dump(), default=str)


def test_an_api_key_is_refused_rather_than_silently_unused() -> None:
    with pytest.raises(ConfigurationError, match="takes no api_key") as caught:
        load_reranker(f"bedrock:{MODEL}", api_key="sk-not-for-aws-1234")
    assert "sk-not-for-aws-1234" not in str(caught.value)


def test_an_aws_error_spelled_with_a_capital_message_is_read_too(start_emulator: StartEmulator) -> None:
    emu = start_emulator("bedrock", api_key=KEY_ID)
    emu.fail_next(Fault(status=400, body={"Message": "1 validation error detected: numberOfResults"}))
    with bedrock(emu) as reranker, pytest.raises(InvalidRequestError, match="1 validation error detected"):
        reranker.rerank(QUERY, DOCS)
