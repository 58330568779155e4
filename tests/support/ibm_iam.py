"""A loopback IBM Cloud: `POST /identity/token` exchanges an API key for `iam-token-<n>`, and `GET
/v2/projects/<id>` answers the project lookup the official SDK makes before its first call."""

from __future__ import annotations

import base64
import json
import ssl
from typing import Any

from tests.support.google_auth import TokenServer

GRANT = "urn:ibm:params:oauth:grant-type:apikey"


def jwt_shaped(name: str, expires_at: int) -> str:
    """A token shaped like IBM's (the official SDK reads `exp` from the payload; nobody checks the signature)."""
    payload = base64.urlsafe_b64encode(json.dumps({"sub": name, "exp": expires_at}).encode()).decode().rstrip("=")
    return f"e30.{payload}.{name}"


class IAMServer(TokenServer):
    """Checks the grant type and the API key; `lifetimes` sets each token's `expires_in` (then 3600). With `jwt`,
    tokens are JWT-shaped, as the real IAM issues them."""

    def __init__(
        self, api_key: str, lifetimes: list[int] | None = None, tls: ssl.SSLContext | None = None, jwt: bool = False
    ) -> None:
        self.api_key = api_key
        self.jwt = jwt
        super().__init__(lifetimes, tls)

    @property
    def token_url(self) -> str:
        return self.token_uri.removesuffix("/token") + "/identity/token"

    @property
    def platform_url(self) -> str:
        return self.token_uri.removesuffix("/token")

    def _answer(self, form: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        if form.get("grant_type") != [GRANT] or form.get("apikey") != [self.api_key]:
            with self._lock:
                self.grants.append(form)
            return 400, {"errorCode": "BXNIM0415E", "errorMessage": "Provided API key could not be found."}
        status, payload = super()._answer(form)
        if status == 200:
            token = payload["access_token"].replace("ya29.token-", "iam-token-")
            if self.jwt:
                token = jwt_shaped(token, 4_000_000_000)
            payload["access_token"] = token
            with self._lock:
                self.issued[-1] = token
        return status, payload

    def _get(self, path: str) -> tuple[int, dict[str, Any]]:
        if path.startswith("/v2/projects/"):
            project = path.removeprefix("/v2/projects/").split("?")[0]
            return 200, {"metadata": {"guid": project}, "entity": {"storage": {"type": "assetfiles"}}}
        return super()._get(path)
