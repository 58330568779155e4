"""Every provider's own error body, at every status a provider answers with, becomes the typed error naming the
provider, the status and the provider's message; and a fallback chain moves on from each to its next member.
(Bedrock and Vertex, which sign from cloud credentials, have the same checks in their own test files.)"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tests.dialects.test_end_to_end import KEY, Mode, call
from tests.support.dialect_apps import APPS, CLOUDFLARE_ACCOUNT
from tests.support.emulator import Fault, ProviderEmulator
from tests.support.fixtures import StartEmulator
from tests.support.ibm_iam import IAMServer

from rerank_core import (
    AuthenticationError,
    InvalidRequestError,
    ProviderError,
    RateLimitError,
    RerankError,
    load_reranker,
)
from rerank_core.dialects import DIALECTS

PROVIDERS = sorted(set(DIALECTS) - {"bedrock", "vertex"})
STATUSES: dict[int, type[RerankError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    403: AuthenticationError,
    404: InvalidRequestError,
    413: InvalidRequestError,
    422: InvalidRequestError,
    429: RateLimitError,
    500: ProviderError,
    503: ProviderError,
}


@pytest.fixture(scope="module")
def iam() -> Iterator[IAMServer]:
    server = IAMServer(KEY)
    yield server
    server.stop()


def spec(provider: str, emu: ProviderEmulator, iam: IAMServer) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if provider == "cloudflare":
        options = {"account_id": CLOUDFLARE_ACCOUNT}
    elif provider == "watsonx":
        options = {"project_id": "project-1", "iam_url": iam.token_url}
    return {
        "provider": provider,
        "model": "test-model",
        "base_url": emu.base_url,
        "api_key": KEY,
        "max_retries": 0,
        "options": options,
    }


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("status", sorted(STATUSES))
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_the_error_is_typed_and_the_chain_moves_on(
    provider: str, status: int, mode: Mode, start_emulator: StartEmulator, iam: IAMServer
) -> None:
    emu = start_emulator(provider)
    backup = start_emulator("cohere")
    message = f"emulated {provider} complaint {status}"
    emu.fail_always(Fault(status=status, body=APPS[provider].error_body(status, message)))
    primary = spec(provider, emu, iam)
    with load_reranker(primary) as reranker, pytest.raises(RerankError) as caught:
        await call(reranker, mode, ["blue sky", "red apple", "apple pie red"])
    error = caught.value
    assert type(error) is STATUSES[status]
    assert (error.provider, error.status_code) == (provider, status)
    # vLLM's `--api-key` middleware answers a fixed body, whatever went wrong.
    assert (message if (provider, status) != ("vllm", 401) else "Unauthorized") in str(error)
    assert KEY not in str(error) + repr(error)

    fallback = {"provider": "cohere", "model": "m", "base_url": backup.base_url, "api_key": "k-0000"}
    refused_before = emu.request_count
    with load_reranker({**primary, "fallback": [fallback]}) as chain:
        response = await call(chain, mode, ["blue sky", "red apple", "apple pie red"], top_n=1)
    assert response.provider == "cohere"
    assert response.results[0].index == 2
    assert emu.request_count > refused_before  # the chain did ask its first member
