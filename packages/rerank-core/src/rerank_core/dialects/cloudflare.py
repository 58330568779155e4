"""Cloudflare Workers AI: `POST https://api.cloudflare.com/client/v4/accounts/{account_id}/ai/run/{model}`, the
model (`@cf/baai/bge-reranker-base` by default) named in the path.

The body is `query`, `contexts[{text}]` and `top_k`. The answer wraps Cloudflare's API envelope around the list:
`{result: {response: [{id, score}]}, success, errors, messages}`, where `id` is the context's position. The
account id is `options["account_id"]`, else CLOUDFLARE_ACCOUNT_ID; the key is an API token with Workers AI
access, sent as a bearer token (CLOUDFLARE_API_TOKEN). A full `…/ai/run/...` URL as `base_url` (an AI Gateway,
say) is used as given.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from rerank_core.dialects._parse import parse_results
from rerank_core.dialects.base import Dialect, ParsedResponse
from rerank_core.errors import ConfigurationError, ResponseFormatError
from rerank_core.models import Document

ACCOUNT_ENV = "CLOUDFLARE_ACCOUNT_ID"


class CloudflareDialect(Dialect):
    name = "cloudflare"
    default_base_url = "https://api.cloudflare.com"
    path = "/client/v4/accounts/{account_id}/ai/run/{model}"
    api_key_env = "CLOUDFLARE_API_TOKEN"
    default_model = "@cf/baai/bge-reranker-base"
    options = frozenset({"account_id"})
    documents_field = "contexts"
    top_n_field = "top_k"

    def check_options(self, options: Mapping[str, Any]) -> None:
        super().check_options(options)
        account = options.get("account_id")
        if account is not None and not (isinstance(account, str) and account.strip()):
            raise ConfigurationError(f"option account_id must be a non-empty str, not {account!r}", provider=self.name)

    def url(self, base_url: str, options: Mapping[str, Any] | None = None, *, model: str | None = None) -> str:
        base = base_url.partition("?")[0].rstrip("/")
        if "/ai/run/" in base:
            return base_url  # the full endpoint (a model URL, an AI Gateway route): as given
        account = (options or {}).get("account_id") or os.environ.get(ACCOUNT_ENV, "").strip()
        if not account:
            raise ConfigurationError(
                "no Cloudflare account id",
                provider=self.name,
                hint=f"Pass options={{'account_id': ...}} or set {ACCOUNT_ENV}",
            )
        if base.endswith("/client/v4"):
            base = base[: -len("/client/v4")]
        path = self.path.format(account_id=quote(str(account), safe=""), model=model or self.default_model)
        return base + path

    def request_body(
        self,
        query: str,
        documents: Sequence[Document],
        *,
        model: str | None,
        top_n: int | None,
        options: Mapping[str, Any],
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"query": query, "contexts": [{"text": doc.text} for doc in documents]}
        if top_n is not None:
            body["top_k"] = top_n
        return body

    def parse(self, payload: Any, *, headers: Mapping[str, str], n_documents: int) -> ParsedResponse:
        result = payload.get("result") if isinstance(payload, dict) else None
        listed = result.get("response") if isinstance(result, dict) else None
        if not isinstance(listed, list):
            raise ResponseFormatError(
                "response has no result.response list",
                provider=self.name,
                hint="Check the model is a Workers AI reranker (e.g. @cf/baai/bge-reranker-base)",
            )
        renamed = [{"index": item.get("id"), **item} if isinstance(item, dict) else item for item in listed]
        return ParsedResponse(scores=parse_results(renamed, n_documents=n_documents, provider=self.name))
