"""Alibaba Cloud Model Studio (DashScope), the native text-rerank API:
`POST https://dashscope.aliyuncs.com/api/v1/services/rerank/text-rerank/text-rerank` (international:
`https://dashscope-intl.aliyuncs.com`).

The body nests the texts: `model` (qwen3-rerank by default), `input{query, documents}` and
`parameters{return_documents: false, top_n, instruct}`; `instruct` (qwen3-rerank's task instruction) carries
`instruction`. The answer nests the list too: `output.results[{index, relevance_score}]`, with
`usage.total_tokens` and a top-level `request_id`. At most 500 documents per request (qwen3-rerank,
gte-rerank-v2). The key is a bearer token (DASHSCOPE_API_KEY).

`dashscope-compatible` is the OpenAI-compatible endpoint of the same service, `POST .../compatible-api/v1/reranks`
(qwen3-rerank only): Cohere's flat body with `instruct` at the top level, answering `results[{index,
relevance_score, document}]` (the echo is ignored) with `usage.total_tokens` and an `id`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rerank_core.dialects._parse import parse_results
from rerank_core.dialects.base import Dialect, ParsedResponse, string_or_none, usage_count
from rerank_core.models import Document, Usage

MAX_DOCUMENTS = 500


class DashScopeDialect(Dialect):
    name = "dashscope"
    default_base_url = "https://dashscope.aliyuncs.com"
    path = "/api/v1/services/rerank/text-rerank/text-rerank"
    api_key_env = "DASHSCOPE_API_KEY"
    default_model = "qwen3-rerank"
    max_documents_per_request = MAX_DOCUMENTS
    instruction_field = "instruct"

    def _endpoint(self, base: str, model: str | None = None) -> str:
        # The path ends in the same segment twice, so its last segment alone does not mark a full endpoint.
        prefix, _, last = self.path.rpartition("/")
        if base.endswith(self.path):
            return base
        if base.endswith(prefix):
            return f"{base}/{last}"
        return super()._endpoint(base, model)

    def request_body(
        self,
        query: str,
        documents: Sequence[Document],
        *,
        model: str | None,
        top_n: int | None,
        options: Mapping[str, Any],
    ) -> dict[str, Any]:
        parameters: dict[str, Any] = {"return_documents": False}
        if top_n is not None:
            parameters["top_n"] = top_n
        if options.get("instruct"):
            parameters["instruct"] = options["instruct"]
        return {
            "model": model or self.default_model,
            "input": {"query": query, "documents": [doc.text for doc in documents]},
            "parameters": parameters,
        }

    def parse(self, payload: Any, *, headers: Mapping[str, str], n_documents: int) -> ParsedResponse:
        output = payload.get("output") if isinstance(payload, dict) else None
        usage = payload.get("usage") if isinstance(payload, dict) else None
        tokens = usage_count(usage.get("total_tokens")) if isinstance(usage, dict) else None
        return ParsedResponse(
            # Without `output`, the payload itself goes to the parser, which reports the error message it carries.
            scores=parse_results(
                output if isinstance(output, dict) else payload, n_documents=n_documents, provider=self.name
            ),
            usage=Usage(prompt_tokens=tokens, total_tokens=tokens),
            request_id=string_or_none(payload, "request_id"),
        )


class DashScopeCompatibleDialect(Dialect):
    name = "dashscope-compatible"
    default_base_url = "https://dashscope.aliyuncs.com"
    path = "/compatible-api/v1/reranks"
    api_key_env = "DASHSCOPE_API_KEY"
    default_model = "qwen3-rerank"
    max_documents_per_request = MAX_DOCUMENTS
    instruction_field = "instruct"
