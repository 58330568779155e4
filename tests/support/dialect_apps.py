"""The provider side of each dialect, for the loopback emulator: request schema and exact response shape.

Each app enforces its provider's request schema (strictly where the provider's spec says
`additionalProperties: false`) and answers in that provider's own response shape, quirks included.
"""

from __future__ import annotations

import json
import math
from typing import Any, ClassVar

REQUEST_FIELDS = {"model", "query", "documents", "top_n"}
"""The fields most rerank APIs share; each app's `allowed` adds its own."""


class RequestRejected(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def require_keys(body: dict[str, Any], required: set[str], allowed: set[str] | None = None) -> None:
    """Reject missing required keys, and, when `allowed` is given, any key outside it (strict schemas)."""
    missing = required - body.keys()
    if missing:
        raise RequestRejected(422, f"missing field(s): {sorted(missing)}")
    if allowed is not None:
        extra = body.keys() - allowed
        if extra:
            raise RequestRejected(400, f"unknown field(s): {sorted(extra)}")


def require_str_list(value: Any, field: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise RequestRejected(422, f"{field} must be a list of strings")
    return value


def texts_of(value: Any, field: str, rank_fields: list[str] | None = None, *, objects: bool = True) -> list[str]:
    """The texts to score: strings as they are, objects (if allowed) as their `rank_fields` (default: all) joined."""
    if not isinstance(value, list) or not value:
        raise RequestRejected(422, f"{field} must be a non-empty list")
    texts = []
    for position, item in enumerate(value):
        if isinstance(item, str):
            texts.append(item)
        elif objects and isinstance(item, dict):
            keys = rank_fields or list(item)
            texts.append(" ".join(str(item[key]) for key in keys if key in item))
        else:
            kind = "a string or an object" if objects else "a string"
            raise RequestRejected(422, f"{field}[{position}] must be {kind}")
    return texts


def optional_top(body: dict[str, Any], field: str, *, minimum: int = 1) -> int | None:
    value = body.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise RequestRejected(422, f"{field} must be an integer >= {minimum}")
    return value


def logit(probability: float) -> float:
    return math.log(probability / (1.0 - probability))


def token_count(texts: list[str]) -> int:
    return sum(len(text.split()) for text in texts)


class EmulatorApp:
    """Base: Bearer auth, `{"error": {"message", "type"}}` error bodies.

    `allowed` is the provider's documented request schema. A `strict` app rejects any other field: the
    seeds' `additionalProperties: false` (Fireworks, Together, the generic platform), NIM (400 on `top_k`), and,
    as a deliberate test choice so a stray field fails loudly, Cohere, Voyage, Mixedbread and Pinecone. The
    others ignore unknown fields, as those servers do (FastAPI/serde defaults, vLLM's documented warning).
    """

    paths: tuple[str, ...] = ("/v1/rerank",)
    allowed: ClassVar[set[str]] = set()
    required: ClassVar[set[str]] = {"model", "query", "documents"}
    strict: ClassVar[bool] = False

    def check_fields(self, body: dict[str, Any], required: set[str]) -> None:
        require_keys(body, required, self.allowed if self.strict else None)

    def authenticated(self, headers: dict[str, str], api_key: str) -> bool:
        return headers.get("authorization") == f"Bearer {api_key}"

    def error_body(self, status: int, message: str) -> Any:
        return {"error": {"message": message, "type": "error", "code": status}}

    def read_request(self, body: dict[str, Any]) -> tuple[str, list[str], int | None]:
        """Validate the body; return (query, document texts to score, top_n). This one: string documents."""
        self.check_fields(body, self.required)
        return body["query"], texts_of(body["documents"], "documents", objects=False), optional_top(body, "top_n")

    def respond(
        self, body: dict[str, Any], ranked: list[tuple[int, float]], texts: list[str], top_n: int | None
    ) -> tuple[Any, dict[str, str]]:
        """The payload and extra headers. `ranked` is (index, score) sorted best first."""
        raise NotImplementedError


class GenericApp(EmulatorApp):
    """Seed 002: string or `{id, text, title?, metadata?}` documents; the original payload is echoed."""

    strict = True

    paths = ("/v1/rerank",)
    allowed: ClassVar[set[str]] = REQUEST_FIELDS | {
        "return_documents",
        "truncate",
        "max_tokens_per_document",
        "metadata",
        "user",
        "extra_body",
    }

    def read_request(self, body: dict[str, Any]) -> tuple[str, list[str], int | None]:
        require_keys(body, {"model", "query", "documents"}, self.allowed)
        docs = body["documents"]
        if not isinstance(docs, list):
            raise RequestRejected(422, "documents must be a list")
        texts = []
        for doc in docs:
            if isinstance(doc, str):
                texts.append(doc)
            elif isinstance(doc, dict) and isinstance(doc.get("text"), str):
                texts.append(doc["text"])
            else:
                raise RequestRejected(422, "each document must be a string or an object with text")
        if body.get("truncate") not in (None, "none", "start", "end"):
            raise RequestRejected(422, "truncate must be none, start or end")
        return body["query"], texts, body.get("top_n")

    def respond(
        self, body: dict[str, Any], ranked: list[tuple[int, float]], texts: list[str], top_n: int | None
    ) -> tuple[Any, dict[str, str]]:
        kept = ranked[:top_n] if top_n else ranked
        results: list[dict[str, Any]] = []
        for index, score in kept:
            item: dict[str, Any] = {"index": index, "relevance_score": score}
            if body.get("return_documents"):
                item["document"] = body["documents"][index]
            results.append(item)
        tokens = sum(len(t.split()) for t in texts)
        return {
            "id": "rerank_emulated",
            "object": "list",
            "model": body["model"],
            "results": results,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }, {}


class FireworksApp(EmulatorApp):
    """Seed 000: strict schema, string documents, `top_n` >= 1; the list is `data`, the document a plain string."""

    allowed: ClassVar[set[str]] = REQUEST_FIELDS | {"return_documents", "task"}
    required: ClassVar[set[str]] = {"query", "documents"}
    strict = True

    def respond(
        self, body: dict[str, Any], ranked: list[tuple[int, float]], texts: list[str], top_n: int | None
    ) -> tuple[Any, dict[str, str]]:
        echo = body.get("return_documents", True)  # documented default: true
        data = [{"index": i, "relevance_score": s, "document": texts[i] if echo else None} for i, s in ranked[:top_n]]
        tokens = token_count(texts)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return {"object": "list", "model": body.get("model"), "data": data, "usage": usage}, {}


class NebiusApp(EmulatorApp):
    """Seed 001: no top_n in the API; every document is echoed as `{text}`; 422s in FastAPI's `detail` shape."""

    allowed: ClassVar[set[str]] = {"model", "query", "documents", "user", "service_tier"}

    def error_body(self, status: int, message: str) -> Any:
        if status == 422:
            return {"detail": [{"loc": ["body"], "msg": message, "type": "value_error"}]}
        return {"detail": message}

    def read_request(self, body: dict[str, Any]) -> tuple[str, list[str], int | None]:
        self.check_fields(body, {"model", "query", "documents"})
        if body.get("service_tier", "auto") not in ("auto", "default", "flex", "no-limit"):
            raise RequestRejected(422, "service_tier: Input should be 'auto', 'default', 'flex' or 'no-limit'")
        return body["query"], texts_of(body["documents"], "documents", objects=False), None

    def respond(
        self, body: dict[str, Any], ranked: list[tuple[int, float]], texts: list[str], top_n: int | None
    ) -> tuple[Any, dict[str, str]]:
        results = [{"index": i, "document": {"text": texts[i]}, "relevance_score": s} for i, s in ranked]
        tokens = token_count(texts)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return {"id": "rerank-emulated", "model": body["model"], "usage": usage, "results": results}, {}


class TogetherApp(EmulatorApp):
    """Seed 003: strict; string or object documents with `rank_fields`; object documents are echoed JSON-encoded
    in `document.text`, whatever `return_documents` says."""

    allowed: ClassVar[set[str]] = REQUEST_FIELDS | {"return_documents", "rank_fields"}
    strict = True

    def error_body(self, status: int, message: str) -> Any:
        return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}

    def read_request(self, body: dict[str, Any]) -> tuple[str, list[str], int | None]:
        self.check_fields(body, {"model", "query", "documents"})
        docs = body["documents"]
        if isinstance(docs, list) and len({isinstance(doc, str) for doc in docs}) > 1:
            raise RequestRejected(400, "documents must be all strings or all objects")
        rank_fields = body.get("rank_fields")
        if rank_fields is not None and not require_str_list(rank_fields, "rank_fields"):
            raise RequestRejected(400, "rank_fields must not be empty")
        return body["query"], texts_of(docs, "documents", rank_fields), optional_top(body, "top_n")

    def respond(
        self, body: dict[str, Any], ranked: list[tuple[int, float]], texts: list[str], top_n: int | None
    ) -> tuple[Any, dict[str, str]]:
        def echo(doc: Any) -> str:
            return doc if isinstance(doc, str) else json.dumps(doc, separators=(",", ":"))

        results = [
            {"index": i, "relevance_score": s, "document": {"text": echo(body["documents"][i])}}
            for i, s in ranked[:top_n]
        ]
        tokens = token_count(texts)
        usage = {"prompt_tokens": tokens, "completion_tokens": 0, "total_tokens": tokens}
        payload = {"object": "rerank", "id": "emulated-0001", "model": body["model"], "results": results}
        return {**payload, "usage": usage}, {}


class OneRouterApp(EmulatorApp):
    """Seed 004: results in index order, not score order, and `top_n` is ignored; no id, no model, no document."""

    allowed: ClassVar[set[str]] = REQUEST_FIELDS

    def respond(
        self, body: dict[str, Any], ranked: list[tuple[int, float]], texts: list[str], top_n: int | None
    ) -> tuple[Any, dict[str, str]]:
        results = [{"index": i, "relevance_score": s} for i, s in sorted(ranked)]
        tokens = token_count(texts)
        return {
            "results": results,
            "usage": {"prompt_tokens": tokens, "completion_tokens": 0, "total_tokens": tokens},
        }, {}


class CohereApp(EmulatorApp):
    """Cohere v2: string documents only, no `return_documents`; usage in `meta`; errors as `{"message"}`."""

    paths: tuple[str, ...] = ("/v2/rerank",)
    allowed: ClassVar[set[str]] = REQUEST_FIELDS | {"max_tokens_per_doc", "priority"}
    strict = True
    objects = False

    def error_body(self, status: int, message: str) -> Any:
        return {"id": "emulated-error", "message": message}

    def read_request(self, body: dict[str, Any]) -> tuple[str, list[str], int | None]:
        self.check_fields(body, {"model", "query", "documents"})
        rank_fields = body.get("rank_fields")
        texts = texts_of(body["documents"], "documents", rank_fields or ["text"], objects=self.objects)
        return body["query"], texts, optional_top(body, "top_n")

    def respond(
        self, body: dict[str, Any], ranked: list[tuple[int, float]], texts: list[str], top_n: int | None
    ) -> tuple[Any, dict[str, str]]:
        results: list[dict[str, Any]] = []
        for index, score in ranked[:top_n]:
            item: dict[str, Any] = {"index": index, "relevance_score": score}
            if body.get("return_documents"):
                doc = body["documents"][index]
                item["document"] = doc if isinstance(doc, dict) else {"text": doc}
            results.append(item)
        meta = {
            "api_version": {"version": self.paths[0].split("/")[1][1:]},
            "billed_units": {"search_units": 1},
            "tokens": {"input_tokens": token_count(texts), "output_tokens": 0},
        }
        return {"id": "emulated-0001", "results": results, "meta": meta}, {}


class CohereV1App(CohereApp):
    """Cohere v1: string or object documents with `rank_fields`, `max_chunks_per_doc`, `return_documents`."""

    paths = ("/v1/rerank",)
    allowed: ClassVar[set[str]] = REQUEST_FIELDS | {"return_documents", "rank_fields", "max_chunks_per_doc"}
    objects = True


class JinaApp(EmulatorApp):
    """Jina: `results` with `{text}` documents when asked; usage `total_tokens`; errors as `{"detail"}`."""

    allowed: ClassVar[set[str]] = REQUEST_FIELDS | {"return_documents"}

    def error_body(self, status: int, message: str) -> Any:
        return {"detail": message}

    def respond(
        self, body: dict[str, Any], ranked: list[tuple[int, float]], texts: list[str], top_n: int | None
    ) -> tuple[Any, dict[str, str]]:
        results: list[dict[str, Any]] = []
        for index, score in ranked[:top_n]:
            item: dict[str, Any] = {"index": index, "relevance_score": score}
            if body.get("return_documents"):
                item["document"] = {"text": texts[index]}
            results.append(item)
        return {"model": body["model"], "usage": {"total_tokens": token_count(texts)}, "results": results}, {}


class VoyageApp(EmulatorApp):
    """Voyage: `top_k` (not top_n), boolean `truncation`, list under `data`; errors as `{"detail"}`."""

    allowed: ClassVar[set[str]] = {"model", "query", "documents", "top_k", "return_documents", "truncation"}
    strict = True

    def error_body(self, status: int, message: str) -> Any:
        return {"detail": message}

    def read_request(self, body: dict[str, Any]) -> tuple[str, list[str], int | None]:
        self.check_fields(body, {"model", "query", "documents"})
        if not isinstance(body.get("truncation", True), bool):
            raise RequestRejected(400, "truncation must be a boolean")
        return body["query"], texts_of(body["documents"], "documents", objects=False), optional_top(body, "top_k")

    def respond(
        self, body: dict[str, Any], ranked: list[tuple[int, float]], texts: list[str], top_n: int | None
    ) -> tuple[Any, dict[str, str]]:
        data: list[dict[str, Any]] = []
        for index, score in ranked[:top_n]:
            item: dict[str, Any] = {"relevance_score": score, "index": index}
            if body.get("return_documents"):
                item["document"] = texts[index]
            data.append(item)
        usage = {"total_tokens": token_count(texts)}
        return {"object": "list", "data": data, "model": body["model"], "usage": usage}, {"x-request-id": "voy-1"}


class MixedbreadApp(EmulatorApp):
    """Mixedbread: documents under `input`, `top_k`, `return_input`; results under `data` with `score`."""

    paths = ("/v1/reranking",)
    allowed: ClassVar[set[str]] = {"model", "query", "input", "top_k", "return_input", "rank_fields", "rewrite_query"}
    strict = True

    def error_body(self, status: int, message: str) -> Any:
        return {"detail": message}

    def read_request(self, body: dict[str, Any]) -> tuple[str, list[str], int | None]:
        self.check_fields(body, {"model", "query", "input"})
        return body["query"], texts_of(body["input"], "input", body.get("rank_fields")), optional_top(body, "top_k")

    def respond(
        self, body: dict[str, Any], ranked: list[tuple[int, float]], texts: list[str], top_n: int | None
    ) -> tuple[Any, dict[str, str]]:
        data: list[dict[str, Any]] = []
        for index, score in ranked[:top_n]:
            item: dict[str, Any] = {"index": index, "score": score, "object": "rank_result"}
            if body.get("return_input"):
                item["input"] = body["input"][index]
            data.append(item)
        tokens = token_count(texts)
        return {
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens, "completion_tokens": 0},
            "model": body["model"],
            "data": data,
            "object": "list",
            "top_k": body.get("top_k", len(texts)),
            "return_input": bool(body.get("return_input")),
        }, {}


class PineconeApp(EmulatorApp):
    """Pinecone: `Api-Key` header and a pinned API version; object documents; `data[].score`; `rerank_units`."""

    paths = ("/rerank",)
    allowed: ClassVar[set[str]] = REQUEST_FIELDS | {"return_documents", "rank_fields", "parameters"}
    strict = True

    def authenticated(self, headers: dict[str, str], api_key: str) -> bool:
        return headers.get("api-key") == api_key and "x-pinecone-api-version" in headers

    def error_body(self, status: int, message: str) -> Any:
        code = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED"}
        return {"error": {"code": code.get(status, "UNKNOWN"), "message": message}, "status": status}

    def read_request(self, body: dict[str, Any]) -> tuple[str, list[str], int | None]:
        self.check_fields(body, {"model", "query", "documents"})
        rank_fields = body.get("rank_fields") or ["text"]
        for position, doc in enumerate(body["documents"] if isinstance(body["documents"], list) else []):
            missing = [f for f in rank_fields if isinstance(doc, dict) and f not in doc]
            if missing:
                raise RequestRejected(400, f"document {position} is missing rank field(s) {missing}")
        return body["query"], texts_of(body["documents"], "documents", rank_fields), optional_top(body, "top_n")

    def respond(
        self, body: dict[str, Any], ranked: list[tuple[int, float]], texts: list[str], top_n: int | None
    ) -> tuple[Any, dict[str, str]]:
        data = [
            {"index": i, "score": s, "document": body["documents"][i] if body.get("return_documents", True) else None}
            for i, s in ranked[:top_n]
        ]
        payload = {"model": body["model"], "data": data, "usage": {"rerank_units": 1}}
        return payload, {"x-pinecone-request-id": "pc-req-1"}


class NvidiaApp(EmulatorApp):
    """NVIDIA NIM `/v1/ranking`: `query: {text}`, `passages: [{text}]`, `truncate` NONE/END, any top-n field
    rejected; answers `rankings: [{index, logit}]`, best first."""

    paths = ("/v1/ranking",)
    allowed: ClassVar[set[str]] = {"model", "query", "passages", "truncate"}
    strict = True

    def error_body(self, status: int, message: str) -> Any:
        return {"detail": message}

    def read_request(self, body: dict[str, Any]) -> tuple[str, list[str], int | None]:
        self.check_fields(body, {"query", "passages"})
        query, passages = body["query"], body["passages"]
        if not isinstance(query, dict) or not isinstance(query.get("text"), str):
            raise RequestRejected(422, "query must be an object with text")
        if not isinstance(passages, list) or not all(isinstance(p, dict) and "text" in p for p in passages):
            raise RequestRejected(422, "passages must be a list of objects with text")
        if body.get("truncate", "NONE") not in ("NONE", "END"):
            raise RequestRejected(422, "truncate must be NONE or END")
        return query["text"], texts_of([p["text"] for p in passages], "passages", objects=False), None

    def respond(
        self, body: dict[str, Any], ranked: list[tuple[int, float]], texts: list[str], top_n: int | None
    ) -> tuple[Any, dict[str, str]]:
        return {"rankings": [{"index": i, "logit": round(logit(s), 6)} for i, s in ranked]}, {}


class TEIApp(EmulatorApp):
    """HF TEI: `texts`, no model or top-n, at most 32 texts (`--max-client-batch-size`), a bare-list answer,
    token usage only in the `x-compute-tokens` header; errors as `{"error", "error_type"}`."""

    paths = ("/rerank",)
    allowed: ClassVar[set[str]] = {"query", "texts", "return_text", "truncate", "truncation_direction", "raw_scores"}
    max_client_batch_size = 32

    def error_body(self, status: int, message: str) -> Any:
        kinds = {400: "Empty", 413: "Validation", 422: "Validation", 424: "Backend", 429: "Overloaded"}
        return {"error": message, "error_type": kinds.get(status, "Unhealthy")}

    def read_request(self, body: dict[str, Any]) -> tuple[str, list[str], int | None]:
        self.check_fields(body, {"query", "texts"})
        if body["texts"] == []:
            raise RequestRejected(400, "`texts` cannot be empty")
        texts = texts_of(body["texts"], "texts", objects=False)
        if len(texts) > self.max_client_batch_size:
            raise RequestRejected(
                422, f"batch size {len(texts)} > maximum allowed batch size {self.max_client_batch_size}"
            )
        return body["query"], texts, None

    def respond(
        self, body: dict[str, Any], ranked: list[tuple[int, float]], texts: list[str], top_n: int | None
    ) -> tuple[Any, dict[str, str]]:
        raw = bool(body.get("raw_scores"))
        results: list[dict[str, Any]] = []
        for index, score in ranked:
            item: dict[str, Any] = {"index": index, "score": round(logit(score), 6) if raw else score}
            if body.get("return_text"):
                item["text"] = texts[index]
            results.append(item)
        return results, {"x-compute-tokens": str(token_count(texts)), "x-compute-time": "1"}


class VLLMApp(EmulatorApp):
    """vLLM `/rerank`: `top_n` 0 = all and null rejected; unknown fields ignored; `{text}` always echoed."""

    paths = ("/rerank",)
    allowed: ClassVar[set[str]] = REQUEST_FIELDS | {
        "truncate_prompt_tokens",
        "priority",
        "use_activation",
        "instruction",
        "max_tokens_per_doc",
        "max_tokens_per_query",
        "truncation_side",
    }

    def error_body(self, status: int, message: str) -> Any:
        if status == 401:  # `--api-key` middleware, measured on vLLM 0.32
            return {"error": "Unauthorized"}
        return {"error": {"message": message, "type": "BadRequestError", "param": None, "code": status}}

    def read_request(self, body: dict[str, Any]) -> tuple[str, list[str], int | None]:
        self.check_fields(body, {"query", "documents"})
        if "top_n" in body and body["top_n"] is None:
            raise RequestRejected(400, "top_n: Input should be a valid integer")
        top_n = optional_top(body, "top_n", minimum=0)
        return body["query"], texts_of(body["documents"], "documents", objects=False), top_n or None

    def respond(
        self, body: dict[str, Any], ranked: list[tuple[int, float]], texts: list[str], top_n: int | None
    ) -> tuple[Any, dict[str, str]]:
        raw = body.get("use_activation") is False
        results = [
            {"index": i, "document": {"text": texts[i]}, "relevance_score": round(logit(s), 6) if raw else s}
            for i, s in ranked[:top_n]
        ]
        usage = {"prompt_tokens": token_count(texts), "total_tokens": token_count(texts)}
        return {
            "id": "rerank-emulated",
            "model": body.get("model", "served-model"),
            "usage": usage,
            "results": results,
        }, {}


class InfinityApp(EmulatorApp):
    """Infinity `/rerank`: Cohere-like; whitespace stripped; `raw_scores`; `top_n` > 0; 401 as `{"detail"}`;
    validation errors, an over-cap batch included, as FastAPI's 422 `{"detail": [{type, loc, msg, input}]}` (the
    bodies a real Infinity 0.0.78 sends, see tests/integration/test_infinity_server.py)."""

    paths = ("/rerank",)
    allowed: ClassVar[set[str]] = REQUEST_FIELDS | {"return_documents", "raw_scores"}
    max_client_batch_size = 2048  # INFINITY_MAX_CLIENT_BATCH_SIZE's default

    def error_body(self, status: int, message: str) -> Any:
        if status == 422:
            kind = "too_long" if "at most" in message else "value_error"
            return {"detail": [{"type": kind, "loc": ["body", "documents"], "msg": message, "input": None}]}
        if status == 401:
            return {"detail": message}
        return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": status}}

    def read_request(self, body: dict[str, Any]) -> tuple[str, list[str], int | None]:
        self.check_fields(body, {"query", "documents"})
        texts = [text.strip() for text in texts_of(body["documents"], "documents", objects=False)]
        if len(texts) > self.max_client_batch_size:
            raise RequestRejected(
                422, f"List should have at most {self.max_client_batch_size} items after validation, not {len(texts)}"
            )
        return body["query"].strip(), texts, optional_top(body, "top_n")

    def respond(
        self, body: dict[str, Any], ranked: list[tuple[int, float]], texts: list[str], top_n: int | None
    ) -> tuple[Any, dict[str, str]]:
        raw = bool(body.get("raw_scores"))
        results = [
            {
                "relevance_score": round(logit(s), 6) if raw else s,
                "index": i,
                "document": texts[i] if body.get("return_documents") else None,
            }
            for i, s in ranked[:top_n]
        ]
        tokens = len(body["query"].strip()) * len(texts) + sum(len(text) for text in texts)  # characters, as Infinity
        return {
            "object": "rerank",
            "results": results,
            "model": body.get("model", "default/not-specified"),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            "id": "infinity-00000000-0000-0000-0000-000000000000",
            "created": 1700000000,
        }, {}


class BedrockApp(EmulatorApp):
    """AWS Bedrock Agent Runtime `Rerank`, per botocore's service model: one TEXT query, 1..1,000 INLINE TEXT
    sources, `numberOfResults` 1..1,000; `results[{index, relevanceScore}]` best first; AWS JSON errors
    (`{"message"}` with an `x-amzn-ErrorType` header, sent by the fault). Authentication: a SigV4 `Authorization`
    header whose credential scope names the expected access key id (the emulator's `api_key`) and `bedrock`."""

    paths = ("/rerank",)
    allowed: ClassVar[set[str]] = {"queries", "sources", "rerankingConfiguration", "nextToken"}
    strict = True

    def authenticated(self, headers: dict[str, str], api_key: str) -> bool:
        auth = headers.get("authorization", "")
        return auth.startswith(f"AWS4-HMAC-SHA256 Credential={api_key}/") and "/bedrock/aws4_request" in auth

    def error_body(self, status: int, message: str) -> Any:
        return {"message": message}

    def read_request(self, body: dict[str, Any]) -> tuple[str, list[str], int | None]:
        self.check_fields(body, {"queries", "sources", "rerankingConfiguration"})
        queries = body["queries"]
        if not (isinstance(queries, list) and len(queries) == 1 and queries[0].get("type") == "TEXT"):
            raise RequestRejected(400, "queries must hold exactly one TEXT query")
        sources = body["sources"]
        if not isinstance(sources, list) or not 1 <= len(sources) <= 1000:
            raise RequestRejected(400, "sources must hold 1 to 1000 items")
        texts = []
        for source in sources:
            inline = source.get("inlineDocumentSource") if isinstance(source, dict) else None
            if source.get("type") != "INLINE" or not isinstance(inline, dict) or inline.get("type") != "TEXT":
                raise RequestRejected(400, "each source must be an INLINE TEXT document")
            texts.append(inline["textDocument"]["text"])
        config = body["rerankingConfiguration"]
        if config.get("type") != "BEDROCK_RERANKING_MODEL":
            raise RequestRejected(400, "rerankingConfiguration.type must be BEDROCK_RERANKING_MODEL")
        bedrock = config["bedrockRerankingConfiguration"]
        if not str(bedrock["modelConfiguration"].get("modelArn", "")).startswith("arn:aws"):
            raise RequestRejected(400, "modelArn must be an ARN")
        top = optional_top(bedrock, "numberOfResults")
        if top is not None and top > 1000:
            raise RequestRejected(400, "numberOfResults must be <= 1000")
        return queries[0]["textQuery"]["text"], texts, top

    def respond(
        self, body: dict[str, Any], ranked: list[tuple[int, float]], texts: list[str], top_n: int | None
    ) -> tuple[Any, dict[str, str]]:
        results = [{"index": index, "relevanceScore": score} for index, score in ranked[:top_n]]
        return {"results": results}, {"x-amzn-RequestId": "emulated-bedrock-0001"}


VERTEX_PROJECT = "test-project"
CLOUDFLARE_ACCOUNT = "0123456789abcdef0123456789abcdef"


class VertexApp(EmulatorApp):
    """Google's Discovery Engine ranking API (v1 REST reference): `query`, 1..200 `records[{id, title?, content}]`,
    `topN`, `model`, `ignoreRecordDetailsInResponse`, `userLabels`; answers `records` sorted by descending score,
    as proto3 JSON (a zero score is left out); Google error bodies `{"error": {code, message, status}}`.
    Authentication: `Authorization: Bearer <access token>` (the emulator's `api_key`)."""

    paths = (f"/v1/projects/{VERTEX_PROJECT}/locations/global/rankingConfigs/default_ranking_config:rank",)
    allowed: ClassVar[set[str]] = {"model", "query", "records", "topN", "ignoreRecordDetailsInResponse", "userLabels"}
    strict = True

    def error_body(self, status: int, message: str) -> Any:
        names = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 429: "RESOURCE_EXHAUSTED"}
        return {"error": {"code": status, "message": message, "status": names.get(status, "INTERNAL")}}

    def read_request(self, body: dict[str, Any]) -> tuple[str, list[str], int | None]:
        self.check_fields(body, {"records"})
        records = body["records"]
        if not isinstance(records, list) or not 1 <= len(records) <= 200:
            raise RequestRejected(400, "records must hold 1 to 200 records")
        texts = []
        for record in records:
            if not isinstance(record, dict) or not set(record) <= {"id", "title", "content"}:
                raise RequestRejected(400, "a record has id, title and content only")
            texts.append(" ".join(str(record.get(key, "")) for key in ("title", "content")).strip())
        top = body.get("topN")
        return str(body.get("query", "")), texts, top if isinstance(top, int) and top > 0 else None

    def respond(
        self, body: dict[str, Any], ranked: list[tuple[int, float]], texts: list[str], top_n: int | None
    ) -> tuple[Any, dict[str, str]]:
        records = []
        for index, score in ranked[:top_n]:
            sent = body["records"][index]
            record: dict[str, Any] = {"id": sent["id"]}
            if not body.get("ignoreRecordDetailsInResponse"):
                record.update({key: sent[key] for key in ("title", "content") if key in sent})
            if score:
                record["score"] = score
            records.append(record)
        return {"records": records}, {}


class AzureApp(CohereApp):
    """Cohere v2 on Azure AI Foundry: the same schema at the deployment's endpoint. A Foundry resource serves it
    under `/providers/cohere/v2/rerank` and takes an `api-key` header; a serverless deployment `/v2/rerank` (and
    `/v1/rerank`) with a bearer key. This app answers on all three and accepts either header."""

    paths = ("/v2/rerank", "/providers/cohere/v2/rerank", "/v1/rerank")

    def authenticated(self, headers: dict[str, str], api_key: str) -> bool:
        return headers.get("api-key") == api_key or headers.get("authorization") == f"Bearer {api_key}"


class DeepInfraApp(EmulatorApp):
    """DeepInfra's reranker inference (docs.deepinfra.com/apis/reranker): `POST /v1/inference/{model}` with
    `{query, documents}`; answers `{"scores": [...]}` in input order (plus `input_tokens`, `request_id` and
    `inference_status`, as its inference answers carry). Errors `{"detail": {"error": ...}}` are modelled as
    `{"detail": "..."}`, the FastAPI shape, since the reranker page shows none."""

    paths = ("/v1/inference/test-model", "/v1/inference/BAAI/bge-reranker-v2-m3")
    allowed: ClassVar[set[str]] = {"query", "documents"}
    strict = True

    def error_body(self, status: int, message: str) -> Any:
        return {"detail": message}

    def read_request(self, body: dict[str, Any]) -> tuple[str, list[str], int | None]:
        self.check_fields(body, {"query", "documents"})
        return body["query"], require_str_list(body["documents"], "documents"), None

    def respond(
        self, body: dict[str, Any], ranked: list[tuple[int, float]], texts: list[str], top_n: int | None
    ) -> tuple[Any, dict[str, str]]:
        by_index = dict(ranked)
        return {
            "scores": [by_index[i] for i in range(len(texts))],
            "input_tokens": token_count(texts),
            "request_id": "deepinfra-emulated-1",
            "inference_status": {"status": "succeeded", "runtime_ms": 1, "cost": 0.0},
        }, {}


class SiliconFlowApp(CohereApp):
    """SiliconFlow (docs.siliconflow.com, "Create rerank"): Cohere's v1 shape at `/v1/rerank`, string documents,
    `return_documents`, `max_chunks_per_doc`, `overlap_tokens`; usage in `meta`."""

    paths = ("/v1/rerank",)
    allowed: ClassVar[set[str]] = REQUEST_FIELDS | {"return_documents", "max_chunks_per_doc", "overlap_tokens"}


class OpenRouterApp(EmulatorApp):
    """OpenRouter's rerank router (openrouter.ai/docs, "Submit a rerank request"): `{model, query, documents,
    top_n}`; answers `id`, `model`, `provider`, results with the document echoed and `usage{search_units,
    total_tokens}`."""

    paths = ("/v1/rerank", "/api/v1/rerank")
    allowed: ClassVar[set[str]] = REQUEST_FIELDS
    strict = True

    def read_request(self, body: dict[str, Any]) -> tuple[str, list[str], int | None]:
        self.check_fields(body, {"model", "query", "documents"})
        return body["query"], require_str_list(body["documents"], "documents"), optional_top(body, "top_n")

    def respond(
        self, body: dict[str, Any], ranked: list[tuple[int, float]], texts: list[str], top_n: int | None
    ) -> tuple[Any, dict[str, str]]:
        results = [
            {"index": index, "relevance_score": score, "document": {"text": texts[index]}}
            for index, score in ranked[:top_n]
        ]
        usage = {"search_units": 1, "total_tokens": token_count(texts)}
        return {
            "id": "gen-rerank-emulated",
            "model": body["model"],
            "provider": "Cohere",
            "results": results,
            "usage": usage,
        }, {}


class ZeroEntropyApp(EmulatorApp):
    """ZeroEntropy (docs.zeroentropy.dev, `/models/rerank`): `{model, query, documents, top_n?, latency?}`;
    answers `results[{index, relevance_score}]` sorted by score, plus `total_tokens`."""

    paths = ("/v1/models/rerank",)
    allowed: ClassVar[set[str]] = REQUEST_FIELDS | {"latency"}
    strict = True

    def read_request(self, body: dict[str, Any]) -> tuple[str, list[str], int | None]:
        self.check_fields(body, {"model", "query", "documents"})
        if body.get("latency") not in (None, "fast", "slow"):
            raise RequestRejected(422, f"latency must be 'fast' or 'slow', not {body['latency']!r}")
        return body["query"], require_str_list(body["documents"], "documents"), optional_top(body, "top_n")

    def respond(
        self, body: dict[str, Any], ranked: list[tuple[int, float]], texts: list[str], top_n: int | None
    ) -> tuple[Any, dict[str, str]]:
        results = [{"index": index, "relevance_score": score} for index, score in ranked[:top_n]]
        return {"results": results, "total_tokens": token_count(texts)}, {}


class DashScopeApp(EmulatorApp):
    """Alibaba Cloud Model Studio's native text rerank (alibabacloud.com/help/en/model-studio/text-rerank-api):
    `{model, input{query, documents}, parameters{return_documents?, top_n?, instruct?}}`, at most 500 documents;
    answers `{output{results[{index, relevance_score}]}, usage{total_tokens}, request_id}`; errors
    `{code, message, request_id}`."""

    paths = ("/api/v1/services/rerank/text-rerank/text-rerank",)
    allowed: ClassVar[set[str]] = {"model", "input", "parameters"}
    strict = True

    def error_body(self, status: int, message: str) -> Any:
        return {"code": "InvalidParameter", "message": message, "request_id": "dashscope-emulated-error"}

    def read_request(self, body: dict[str, Any]) -> tuple[str, list[str], int | None]:
        self.check_fields(body, {"model", "input"})
        given = body["input"]
        if not isinstance(given, dict) or set(given) != {"query", "documents"}:
            raise RequestRejected(400, "input must hold query and documents")
        texts = require_str_list(given["documents"], "input.documents")
        if not 1 <= len(texts) <= 500:
            raise RequestRejected(400, "input.documents must hold 1 to 500 documents")
        parameters = body.get("parameters", {})
        if not isinstance(parameters, dict) or not set(parameters) <= {"return_documents", "top_n", "instruct"}:
            raise RequestRejected(400, "parameters take return_documents, top_n and instruct")
        if "instruct" in parameters and not isinstance(parameters["instruct"], str):
            raise RequestRejected(400, "parameters.instruct must be a string")
        return given["query"], texts, optional_top(parameters, "top_n")

    def respond(
        self, body: dict[str, Any], ranked: list[tuple[int, float]], texts: list[str], top_n: int | None
    ) -> tuple[Any, dict[str, str]]:
        results = [{"index": index, "relevance_score": score} for index, score in ranked[:top_n]]
        usage = {"total_tokens": token_count(texts)}
        return {"output": {"results": results}, "usage": usage, "request_id": "dashscope-emulated-1"}, {}


class DashScopeCompatibleApp(EmulatorApp):
    """Model Studio's OpenAI-compatible rerank (docs.qwencloud.com, "OpenAI compatible reranking"): `{model, query,
    documents, top_n?, instruct?}`, at most 500 documents; answers `{id, object: "list", model, results[{document
    {text}, index, relevance_score}], usage{total_tokens}}`. Errors are modelled on OpenAI's `{error{message, type,
    code}}` (not documented for this endpoint)."""

    paths = ("/compatible-api/v1/reranks",)
    allowed: ClassVar[set[str]] = REQUEST_FIELDS | {"instruct"}
    strict = True

    def error_body(self, status: int, message: str) -> Any:
        return {"error": {"message": message, "type": "invalid_request_error", "code": "InvalidParameter"}}

    def read_request(self, body: dict[str, Any]) -> tuple[str, list[str], int | None]:
        self.check_fields(body, {"model", "query", "documents"})
        texts = require_str_list(body["documents"], "documents")
        if not 1 <= len(texts) <= 500:
            raise RequestRejected(400, "documents must hold 1 to 500 documents")
        if "instruct" in body and not isinstance(body["instruct"], str):
            raise RequestRejected(400, "instruct must be a string")
        return body["query"], texts, optional_top(body, "top_n")

    def respond(
        self, body: dict[str, Any], ranked: list[tuple[int, float]], texts: list[str], top_n: int | None
    ) -> tuple[Any, dict[str, str]]:
        results = [
            {"document": {"text": texts[index]}, "index": index, "relevance_score": score}
            for index, score in ranked[:top_n]
        ]
        usage = {"total_tokens": token_count(texts)}
        return {
            "id": "rerank-emulated-1",
            "object": "list",
            "model": body["model"],
            "results": results,
            "usage": usage,
        }, {}


class ContextualApp(EmulatorApp):
    """Contextual AI's reranker (docs.contextual.ai, "Rerank"): `{model, query, documents, top_n?, instruction?,
    metadata?}`, `metadata` one string per document; answers `results[{index, relevance_score}]`. As a deliberate
    test choice, a document whose metadata line names `source: archive` scores lower when the instruction says to
    prefer recent sources, so an instruction that never arrived, or metadata sent out of order, changes the
    ranking."""

    paths = ("/v1/rerank",)
    allowed: ClassVar[set[str]] = REQUEST_FIELDS | {"instruction", "metadata"}
    strict = True

    def read_request(self, body: dict[str, Any]) -> tuple[str, list[str], int | None]:
        self.check_fields(body, {"model", "query", "documents"})
        texts = require_str_list(body["documents"], "documents")
        if "metadata" in body:
            metadata = require_str_list(body["metadata"], "metadata")
            if len(metadata) != len(texts):
                raise RequestRejected(400, "metadata must have one entry per document")
        if "instruction" in body and not isinstance(body["instruction"], str):
            raise RequestRejected(400, "instruction must be a string")
        return body["query"], texts, optional_top(body, "top_n")

    def respond(
        self, body: dict[str, Any], ranked: list[tuple[int, float]], texts: list[str], top_n: int | None
    ) -> tuple[Any, dict[str, str]]:
        if "recent" in body.get("instruction", "") and "metadata" in body:
            demoted = {i for i, line in enumerate(body["metadata"]) if "source: archive" in line}
            ranked = sorted(((i, s / 10 if i in demoted else s) for i, s in ranked), key=lambda pair: -pair[1])
        return {"results": [{"index": i, "relevance_score": s} for i, s in ranked[:top_n]]}, {}


class CloudflareApp(EmulatorApp):
    """Cloudflare Workers AI's `@cf/baai/bge-reranker-base` (developers.cloudflare.com/workers-ai/models, and the
    workers-types `Ai_Cf_Baai_Bge_Reranker_Base_Input/Output`): `{query, contexts[{text}], top_k?}` at
    `/client/v4/accounts/{account}/ai/run/@cf/baai/bge-reranker-base`; answers Cloudflare's envelope
    `{result: {response: [{id, score}]}, success, errors, messages}`, and errors as `{success: false, errors:
    [{code, message}]}`."""

    paths = (
        f"/client/v4/accounts/{CLOUDFLARE_ACCOUNT}/ai/run/@cf/baai/bge-reranker-base",
        f"/client/v4/accounts/{CLOUDFLARE_ACCOUNT}/ai/run/@cf/baai/bge-reranker-v2-m3",
        f"/client/v4/accounts/{CLOUDFLARE_ACCOUNT}/ai/run/test-model",
    )
    allowed: ClassVar[set[str]] = {"query", "contexts", "top_k"}
    strict = True

    def error_body(self, status: int, message: str) -> Any:
        return {"success": False, "errors": [{"code": 7000 + status, "message": message}], "messages": []}

    def read_request(self, body: dict[str, Any]) -> tuple[str, list[str], int | None]:
        self.check_fields(body, {"query", "contexts"})
        contexts = body["contexts"]
        if not isinstance(contexts, list) or not all(isinstance(c, dict) and set(c) == {"text"} for c in contexts):
            raise RequestRejected(400, "contexts must be a list of {text} objects")
        return body["query"], [str(c["text"]) for c in contexts], optional_top(body, "top_k")

    def respond(
        self, body: dict[str, Any], ranked: list[tuple[int, float]], texts: list[str], top_n: int | None
    ) -> tuple[Any, dict[str, str]]:
        response = [{"id": index, "score": score} for index, score in ranked[:top_n]]
        return {"result": {"response": response}, "success": True, "errors": [], "messages": []}, {}


class WatsonxApp(EmulatorApp):
    """IBM watsonx.ai text rerank (cloud.ibm.com/apidocs/watsonx-ai, "Generate rerank"): `POST /ml/v1/text/rerank`
    with a `version` query parameter; `{model_id, query, inputs[{text}], project_id | space_id, parameters?}`;
    answers `{model_id, results[{index, score}], input_token_count, created_at}`; errors `{errors: [{code,
    message}], trace, status_code}`. Authenticated by an IAM token (`Bearer iam-token-...`), never the API key."""

    paths = ("/ml/v1/text/rerank",)
    allowed: ClassVar[set[str]] = {"model_id", "query", "inputs", "project_id", "space_id", "parameters"}
    strict = True

    def authenticated(self, headers: dict[str, str], api_key: str) -> bool:
        return headers.get("authorization", "").startswith("Bearer iam-token-")

    def error_body(self, status: int, message: str) -> Any:
        return {"errors": [{"code": "invalid_input", "message": message}], "trace": "t-1", "status_code": status}

    def read_request(self, body: dict[str, Any]) -> tuple[str, list[str], int | None]:
        self.check_fields(body, {"model_id", "query", "inputs"})
        if ("project_id" in body) == ("space_id" in body):
            raise RequestRejected(400, "exactly one of project_id and space_id is required")
        inputs = body["inputs"]
        if not isinstance(inputs, list) or not all(isinstance(i, dict) and set(i) == {"text"} for i in inputs):
            raise RequestRejected(400, "inputs must be a list of {text} objects")
        parameters = body.get("parameters", {})
        if not isinstance(parameters, dict) or not set(parameters) <= {"truncate_input_tokens", "return_options"}:
            raise RequestRejected(400, "parameters take truncate_input_tokens and return_options")
        top = optional_top(parameters.get("return_options") or {}, "top_n")
        return body["query"], [str(i["text"]) for i in inputs], top

    def respond(
        self, body: dict[str, Any], ranked: list[tuple[int, float]], texts: list[str], top_n: int | None
    ) -> tuple[Any, dict[str, str]]:
        results = [{"index": index, "score": logit(min(max(score, 1e-6), 1 - 1e-6))} for index, score in ranked]
        return {
            "model_id": body["model_id"],
            "results": results[:top_n],
            "input_token_count": token_count(texts),
            "created_at": "2026-12-06T00:00:00.000Z",
        }, {}


APPS: dict[str, EmulatorApp] = {
    "fireworks": FireworksApp(),
    "nebius": NebiusApp(),
    "generic": GenericApp(),
    "together": TogetherApp(),
    "onerouter": OneRouterApp(),
    "cohere": CohereApp(),
    "cohere-v1": CohereV1App(),
    "jina": JinaApp(),
    "voyage": VoyageApp(),
    "mixedbread": MixedbreadApp(),
    "pinecone": PineconeApp(),
    "nvidia": NvidiaApp(),
    "tei": TEIApp(),
    "vllm": VLLMApp(),
    "infinity": InfinityApp(),
    "bedrock": BedrockApp(),
    "vertex": VertexApp(),
    "azure": AzureApp(),
    "deepinfra": DeepInfraApp(),
    "siliconflow": SiliconFlowApp(),
    "openrouter": OpenRouterApp(),
    "zeroentropy": ZeroEntropyApp(),
    "dashscope": DashScopeApp(),
    "dashscope-compatible": DashScopeCompatibleApp(),
    "contextual": ContextualApp(),
    "cloudflare": CloudflareApp(),
    "watsonx": WatsonxApp(),
}
