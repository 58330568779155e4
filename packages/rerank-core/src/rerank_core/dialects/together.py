"""Together AI (seed 003): `POST https://api.together.xyz/v1/rerank`.

`additionalProperties: false`: only documented fields are sent. Documents go as strings, or, when the caller sets
`rank_fields`, as objects `{"text", <rank fields from metadata>}`. Together answers object documents with the
object JSON-encoded in `document.text`; that echo is ignored, the client re-attaches the caller's input by index.
"""

from __future__ import annotations

from rerank_core.dialects.base import Dialect


class TogetherDialect(Dialect):
    name = "together"
    default_base_url = "https://api.together.xyz"
    path = "/v1/rerank"
    api_key_env = "TOGETHER_API_KEY"
    default_model = "Salesforce/Llama-Rank-V1"
    options = frozenset({"rank_fields"})
    return_documents_field = "return_documents"
