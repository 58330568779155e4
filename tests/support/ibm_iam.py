"""A loopback IBM Cloud IAM token endpoint: `POST /identity/token` exchanges an API key for `iam-token-<n>`."""

from __future__ import annotations

from typing import Any

from tests.support.google_auth import TokenServer

GRANT = "urn:ibm:params:oauth:grant-type:apikey"


class IAMServer(TokenServer):
    """Checks the grant type and the API key; `lifetimes` sets each token's `expires_in` (then 3600)."""

    def __init__(self, api_key: str, lifetimes: list[int] | None = None) -> None:
        self.api_key = api_key
        super().__init__(lifetimes)

    @property
    def token_url(self) -> str:
        return self.token_uri.removesuffix("/token") + "/identity/token"

    def _answer(self, form: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        if form.get("grant_type") != [GRANT] or form.get("apikey") != [self.api_key]:
            with self._lock:
                self.grants.append(form)
            return 400, {"errorCode": "BXNIM0415E", "errorMessage": "Provided API key could not be found."}
        status, payload = super()._answer(form)
        if status == 200:
            payload["access_token"] = payload["access_token"].replace("ya29.token-", "iam-token-")
            with self._lock:
                self.issued[-1] = payload["access_token"]
        return status, payload
