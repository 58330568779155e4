"""AWS Bedrock: the Agent Runtime `Rerank` operation, `POST https://bedrock-agent-runtime.{region}.amazonaws.com/rerank`.

The body nests everything: `queries[{type: TEXT, textQuery: {text}}]`, `sources[{type: INLINE,
inlineDocumentSource: {type: TEXT, textDocument: {text}}}]` and `rerankingConfiguration` carrying the model ARN
and `numberOfResults` (botocore's service model: at most 1,000 sources and 1,000 results per request). The answer
is `results[{index, relevanceScore}]` with no usage and no score range documented.

Requests are signed with SigV4 (service `bedrock`) by botocore, from the standard AWS chain (environment, shared
config and profiles, SSO, container and instance roles); botocore refreshes temporary credentials, and every
attempt is signed anew. botocore comes with the `aws` extra. The credentials stay inside botocore's objects:
nothing here keeps, logs or shows them.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Generator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import httpx

from rerank_core.dialects._parse import parse_results
from rerank_core.dialects.base import Dialect, ParsedResponse, refuse_api_key
from rerank_core.errors import AuthenticationError, ConfigurationError
from rerank_core.http.error_mapping import CredentialScrubbing
from rerank_core.models import Document

if TYPE_CHECKING:
    from botocore.credentials import Credentials, ReadOnlyCredentials
    from botocore.session import Session

SERVICE = "bedrock"
"""The SigV4 signing name of bedrock-agent-runtime (its endpoint prefix differs)."""
MAX_SOURCES = 1000
INSTALL_HINT = "Install the AWS extra: pip install 'rerank-core[aws]'"
CREDENTIALS_HINT = (
    "Check the AWS credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN, AWS_PROFILE or "
    "options={'profile': ...}, `aws sso login`, or the instance/container role), their bedrock:Rerank and "
    "bedrock:InvokeModel permissions, and that the model is enabled in this region"
)


class BedrockDialect(Dialect):
    name = "bedrock"
    default_base_url = None  # built from the region
    path = "/rerank"
    requires_api_key = False
    requires_model = True
    score_kind = "unknown"
    max_documents_per_request = MAX_SOURCES
    options = frozenset({"region", "profile", "additional_model_request_fields"})
    auth_hint = CREDENTIALS_HINT
    documents_field = "sources"

    def __init__(self) -> None:
        self.region: str | None = None

    def check_options(self, options: Mapping[str, Any]) -> None:
        super().check_options(options)
        for key in ("region", "profile"):
            if key in options and not (isinstance(options[key], str) and options[key].strip()):
                raise ConfigurationError(
                    f"option {key} must be a non-empty str, not {options[key]!r}",
                    provider=self.name,
                    hint='e.g. options={"region": "us-west-2"}',
                )
        extra = options.get("additional_model_request_fields")
        if extra is not None and not (isinstance(extra, Mapping) and all(isinstance(k, str) for k in extra)):
            raise ConfigurationError(
                "additional_model_request_fields must be a mapping of field names to values",
                provider=self.name,
                hint='e.g. options={"additional_model_request_fields": {"max_tokens_per_doc": 512}}',
            )

    def request_auth(self, options: Mapping[str, Any], api_key: str | None = None) -> httpx.Auth:
        session = _session(options.get("profile"))
        self.region = _region(session, options)
        return SigV4Auth(session, self.region)

    def default_base_url_for(self, api_key: str | None) -> str | None:
        if self.region is None:
            return None
        return f"https://bedrock-agent-runtime.{self.region}.{_dns_suffix(self.region)}"

    def headers(self, api_key: str | None) -> dict[str, str]:
        refuse_api_key(self.name, api_key, "AWS credentials (see docs/providers.md, Clouds)")
        return {}  # every request is signed instead (`request_auth`)

    def model_arn(self, model: str | None, options: Mapping[str, Any]) -> str:
        if not model:
            raise ConfigurationError(
                "bedrock needs a model", provider=self.name, hint='e.g. "bedrock:cohere.rerank-v3-5:0"'
            )
        if model.startswith("arn:"):
            return model
        region = self.region or options.get("region")
        if not region:
            raise ConfigurationError(
                f"no AWS region to build the ARN of {model!r}",
                provider=self.name,
                hint="Set AWS_REGION or options={'region': ...}, or name the model by its full ARN",
            )
        return f"arn:{_partition(region)}:bedrock:{region}::foundation-model/{model}"

    def request_body(
        self,
        query: str,
        documents: Sequence[Document],
        *,
        model: str | None,
        top_n: int | None,
        options: Mapping[str, Any],
    ) -> dict[str, Any]:
        model_configuration: dict[str, Any] = {"modelArn": self.model_arn(model, options)}
        if options.get("additional_model_request_fields"):
            model_configuration["additionalModelRequestFields"] = dict(options["additional_model_request_fields"])
        return {
            "queries": [{"type": "TEXT", "textQuery": {"text": query}}],
            "sources": [
                {"type": "INLINE", "inlineDocumentSource": {"type": "TEXT", "textDocument": {"text": text}}}
                for text in self.documents_payload(documents, options)
            ],
            "rerankingConfiguration": {
                "type": "BEDROCK_RERANKING_MODEL",
                "bedrockRerankingConfiguration": {
                    # Always sent: without it the number of results is the service's choice, not all of them.
                    "numberOfResults": top_n if top_n is not None else len(documents),
                    "modelConfiguration": model_configuration,
                },
            },
        }

    def parse(self, payload: Any, *, headers: Mapping[str, str], n_documents: int) -> ParsedResponse:
        if isinstance(payload, dict) and isinstance(payload.get("results"), list):
            renamed = [
                {"index": item.get("index"), "score": item["relevanceScore"]}
                if isinstance(item, dict) and "relevanceScore" in item
                else item
                for item in payload["results"]
            ]
            payload = {"results": renamed}
        request_id = next((v for k, v in headers.items() if k.lower() == "x-amzn-requestid"), None)
        return ParsedResponse(
            scores=parse_results(payload, n_documents=n_documents, provider=self.name), request_id=request_id
        )


class SigV4Auth(httpx.Auth):
    """Signs each request with botocore's SigV4 signer; credentials are read (and refreshed) for each one."""

    requires_request_body = True

    def __init__(self, session: Session, region: str) -> None:
        self._session = session
        self.region = region
        self._credentials: Credentials | None = None
        self._lock = threading.Lock()
        self.credential_scrubbing = CredentialScrubbing()

    def __repr__(self) -> str:
        return f"SigV4Auth(service={SERVICE!r}, region={self.region!r})"

    def frozen_credentials(self) -> ReadOnlyCredentials:
        """The current credentials: resolved through the chain on first use, refreshed by botocore near expiry."""
        from botocore.exceptions import BotoCoreError

        try:
            with self._lock:
                if self._credentials is None:
                    self._credentials = self._session.get_credentials()
                credentials = self._credentials
            if credentials is not None:
                return credentials.get_frozen_credentials()
            problem = "no AWS credentials were found"
        except BotoCoreError as exc:  # botocore's messages name profiles and files, never secrets
            problem = f"the AWS credentials could not be loaded ({type(exc).__name__}: {exc})"
        raise AuthenticationError(problem, provider=BedrockDialect.name, hint=CREDENTIALS_HINT)

    def sign(self, request: httpx.Request, credentials: ReadOnlyCredentials) -> None:
        from botocore.auth import SigV4Auth as BotocoreSigV4
        from botocore.awsrequest import AWSRequest

        # Only the content type and the host are signed: the headers httpx adds later stay out of the signature.
        unsigned = AWSRequest(
            method=request.method,
            url=str(request.url),
            data=request.content,
            headers={"Content-Type": request.headers.get("content-type", "application/json")},
        )
        self.credential_scrubbing.update(credentials.secret_key, credentials.token)  # before botocore logs them
        BotocoreSigV4(credentials, SERVICE, self.region).add_auth(unsigned)
        for name in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token"):
            value = unsigned.headers.get(name)
            if value is not None:
                request.headers[name] = value

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self.sign(request, self.frozen_credentials())
        yield request

    async def async_auth_flow(self, request: httpx.Request) -> Any:
        # A refresh may call STS or the instance metadata service, with blocking I/O: not on the event loop.
        self.sign(request, await asyncio.to_thread(self.frozen_credentials))
        yield request


def _session(profile: str | None) -> Session:
    try:
        import botocore.session
    except ImportError:
        raise ConfigurationError("provider 'bedrock' needs botocore", provider="bedrock", hint=INSTALL_HINT) from None
    return botocore.session.Session(profile=profile)


def _region(session: Session, options: Mapping[str, Any]) -> str:
    from botocore.exceptions import BotoCoreError

    if options.get("region"):
        return str(options["region"]).strip()
    # The cross-SDK variable first; botocore itself reads only AWS_DEFAULT_REGION and the profile's region.
    if os.environ.get("AWS_REGION", "").strip():
        return os.environ["AWS_REGION"].strip()
    try:
        region = session.get_config_variable("region")
    except BotoCoreError as exc:
        raise ConfigurationError(
            f"the AWS configuration could not be read ({type(exc).__name__}: {exc})",
            provider="bedrock",
            hint="Check AWS_PROFILE / options={'profile': ...} and ~/.aws/config",
        ) from None
    if not region:
        raise ConfigurationError(
            "no AWS region configured",
            provider="bedrock",
            hint="Set AWS_REGION or AWS_DEFAULT_REGION (or a region in ~/.aws/config), or pass "
            "options={'region': 'us-west-2'}",
        )
    return str(region)


def _partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def _dns_suffix(region: str) -> str:
    return "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
