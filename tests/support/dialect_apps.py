"""The provider side of each dialect, for the loopback emulator: request schema and exact response shape.

Each app enforces its provider's request schema (strictly where the provider's spec says
`additionalProperties: false`) and answers in that provider's own response shape, quirks included.
"""

from __future__ import annotations

from typing import Any, ClassVar


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


class EmulatorApp:
    """Base: Bearer auth, `{"error": {"message", "type"}}` error bodies."""

    paths: tuple[str, ...] = ("/v1/rerank",)

    def authenticated(self, headers: dict[str, str], api_key: str) -> bool:
        return headers.get("authorization") == f"Bearer {api_key}"

    def error_body(self, status: int, message: str) -> Any:
        return {"error": {"message": message, "type": "error", "code": status}}

    def read_request(self, body: dict[str, Any]) -> tuple[str, list[str], int | None]:
        """Validate the body; return (query, document texts to score, top_n)."""
        raise NotImplementedError

    def respond(
        self, body: dict[str, Any], ranked: list[tuple[int, float]], texts: list[str], top_n: int | None
    ) -> tuple[Any, dict[str, str]]:
        """The payload and extra headers. `ranked` is (index, score) sorted best first."""
        raise NotImplementedError


class GenericApp(EmulatorApp):
    """Seed 002: string or `{id, text, title?, metadata?}` documents; the original payload is echoed."""

    paths = ("/v1/rerank",)
    allowed: ClassVar[set[str]] = {
        "model",
        "query",
        "documents",
        "top_n",
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


APPS: dict[str, EmulatorApp] = {
    "generic": GenericApp(),
}
