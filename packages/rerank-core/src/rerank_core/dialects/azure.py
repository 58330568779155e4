"""Cohere rerank on Azure AI Foundry: the Cohere v2 shape at your deployment's endpoint.

Two endpoint forms exist: a Foundry resource, `https://{resource}.services.ai.azure.com/providers/cohere/v2/rerank`
(authenticated with an `api-key` header, the model being the deployment's model name), and the older serverless
deployments, `https://{deployment}.{region}.models.ai.azure.com/v2/rerank` or `/v1/rerank` (a bearer key). The
key goes in both headers, so either form works with one setting. There is no default base URL: pass your
deployment's. Body, answer and usage are Cohere's (see `cohere.py`).
"""

from __future__ import annotations

from rerank_core.dialects.cohere import CohereDialect

FOUNDRY_HOST = ".services.ai.azure.com"
FOUNDRY_PREFIX = "/providers/cohere"


class AzureDialect(CohereDialect):
    name = "azure"
    default_base_url = None
    api_key_env = "AZURE_AI_API_KEY"
    default_model = None
    requires_model = True

    def normalize_base(self, base: str) -> str:
        # A Foundry resource serves Cohere under /providers/cohere; its docs show the resource URL alone too.
        host_and_path = base.split("://", 1)[-1]
        host, _, path = host_and_path.partition("/")
        if host.endswith(FOUNDRY_HOST) and not ("/" + path).startswith(FOUNDRY_PREFIX):
            return base + FOUNDRY_PREFIX
        return base

    def headers(self, api_key: str | None) -> dict[str, str]:
        return {"api-key": api_key, "Authorization": f"Bearer {api_key}"} if api_key else {}
