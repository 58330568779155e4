"""The generic hosting platform's Reranker API (seed 002): `POST $BASE_URL/v1/rerank`.

Object documents carry the caller's id and, only when asked with `send_metadata`, their metadata: metadata often
holds internal fields (and values JSON cannot encode) that should not leave the process by default.
`truncate`, `max_tokens_per_document`, request `metadata`, `user` and `extra_body` (which the platform merges into
the backend body) are forwarded as documented.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rerank_core.dialects.base import Dialect
from rerank_core.errors import ConfigurationError
from rerank_core.models import Document


class GenericDialect(Dialect):
    name = "generic"
    default_base_url = None
    path = "/v1/rerank"
    api_key_env = "RERANK_API_KEY"
    options = frozenset({"truncate", "max_tokens_per_document", "metadata", "user", "extra_body", "send_metadata"})
    return_documents_field = "return_documents"
    merges_extra_body = False  # `extra_body` is the platform's own field: it merges it into the backend's body
    requires_model = True  # the model or deployment id is a required field, and no platform-wide default exists

    def check_options(self, options: Mapping[str, Any]) -> None:
        super().check_options(options)
        chosen = options.get("send_metadata", False)
        if not isinstance(chosen, bool) and not (
            isinstance(chosen, list) and all(isinstance(name, str) for name in chosen)
        ):
            raise ConfigurationError(
                f"send_metadata must be true, false or a list of metadata field names, not {chosen!r}",
                provider=self.name,
            )

    def documents_payload(self, documents: Sequence[Document], options: Mapping[str, Any]) -> list[Any]:
        chosen = options.get("send_metadata", False)
        # A document without id or metadata goes as its text: checked here, it costs no call per document.
        return [doc.text if doc.id is None and not doc.metadata else _document(doc, chosen) for doc in documents]

    def body_options(self, options: Mapping[str, Any]) -> Mapping[str, Any]:
        return {key: value for key, value in options.items() if key != "send_metadata"}


def _document(doc: Document, send_metadata: bool | list[str]) -> str | dict[str, Any]:
    if send_metadata is True:
        metadata = doc.metadata
    else:
        metadata = {name: doc.metadata[name] for name in send_metadata or () if name in doc.metadata}
    if doc.id is None and not metadata:
        return doc.text
    payload: dict[str, Any] = {"text": doc.text}
    if doc.id is not None:
        payload["id"] = str(doc.id)  # the platform's ids are strings; the caller's result keeps its own type
    if metadata:
        payload["metadata"] = metadata
    return payload
