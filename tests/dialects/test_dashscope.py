"""Alibaba Cloud Model Studio (DashScope), the native text-rerank API: nested body and answer, `instruct` carrying the
instruction per call and from config, batches of 500, usage and request ids, the CLI and a wrapper; and the
OpenAI-compatible endpoint (`dashscope-compatible`), with `instruct` at the top level."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.dialects.test_end_to_end import KEY, QUERY
from tests.support.emulator import Fault
from tests.support.fixtures import StartEmulator

from rerank_core import InvalidRequestError, ResponseFormatError, load_reranker
from rerank_core.dialects import get_dialect

DOCS = ["blue sky", "red apple", "apple pie red", "red car", "apple tree"]
ENDPOINT = "/api/v1/services/rerank/text-rerank/text-rerank"


def test_the_body_nests_input_and_parameters_and_the_answer_is_read_from_output(
    start_emulator: StartEmulator,
) -> None:
    emu = start_emulator("dashscope", api_key=KEY)
    with load_reranker("dashscope", base_url=emu.base_url, api_key=KEY) as reranker:
        response = reranker.rerank(QUERY, DOCS, top_n=2)
    request = emu.requests[0]
    assert request.path == ENDPOINT
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.body == {
        "model": "qwen3-rerank",
        "input": {"query": QUERY, "documents": DOCS},
        "parameters": {"return_documents": False, "top_n": 2},
    }
    assert [x.index for x in response.results] == [2, 1]
    assert response.usage.total_tokens == sum(len(text.split()) for text in DOCS)
    assert response.request_ids == ["dashscope-emulated-1"]


async def test_an_instruction_goes_in_parameters_instruct_per_call_and_from_config(
    start_emulator: StartEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DASHSCOPE_API_KEY", KEY)
    emu = start_emulator("dashscope", api_key=KEY)
    configured = {"instruction": "Retrieve semantically similar text."}
    with load_reranker("dashscope:qwen3-rerank", base_url=emu.base_url, options=configured) as reranker:
        reranker.rerank(QUERY, DOCS)
        await reranker.arerank(QUERY, DOCS, instruction="Find recipes")
    assert [r.body["parameters"].get("instruct") for r in emu.requests] == [configured["instruction"], "Find recipes"]
    assert all("instruction" not in r.body["parameters"] for r in emu.requests)


def test_more_than_500_documents_are_split_and_merged(start_emulator: StartEmulator) -> None:
    emu = start_emulator("dashscope", api_key=KEY)
    docs = [f"apple {i}" if i % 97 == 0 else f"sky {i}" for i in range(1201)]
    with load_reranker("dashscope", base_url=emu.base_url, api_key=KEY) as reranker:
        response = reranker.rerank("apple", docs, top_n=5)
    assert sorted(len(r.body["input"]["documents"]) for r in emu.requests) == [201, 500, 500]
    assert {docs[x.index] for x in response.results} <= {doc for doc in docs if doc.startswith("apple")}
    assert len(response.results) == 5


@pytest.mark.parametrize(
    "mutate",
    [
        lambda p: {"output": {}, "request_id": "x"},
        lambda p: {"output": {"results": [{"index": 9, "relevance_score": 0.5}]}},
        lambda p: {"code": "InternalError", "message": "model busy", "request_id": "x"},
    ],
    ids=["no results", "index out of range", "an error object"],
)
def test_a_broken_answer_is_a_response_format_error(start_emulator: StartEmulator, mutate: object) -> None:
    emu = start_emulator("dashscope", api_key=KEY)
    emu.fail_next(Fault(mutate=mutate))  # type: ignore[arg-type]
    with (
        load_reranker("dashscope", base_url=emu.base_url, api_key=KEY) as reranker,
        pytest.raises(ResponseFormatError) as caught,
    ):
        reranker.rerank(QUERY, DOCS)
    assert caught.value.provider == "dashscope"


def test_an_error_answer_names_dashscopes_message(start_emulator: StartEmulator) -> None:
    emu = start_emulator("dashscope", api_key=KEY)
    emu.fail_next(Fault(status=400, body=emu.app.error_body(400, "Model not exist.")))
    with (
        load_reranker("dashscope:no-such-model", base_url=emu.base_url, api_key=KEY) as reranker,
        pytest.raises(InvalidRequestError, match="Model not exist") as caught,
    ):
        reranker.rerank(QUERY, DOCS)
    assert caught.value.status_code == 400


def test_the_international_host_is_a_base_url() -> None:
    assert get_dialect("dashscope").url("https://dashscope-intl.aliyuncs.com") == (
        "https://dashscope-intl.aliyuncs.com" + ENDPOINT
    )


def test_the_cli_and_the_langchain_wrapper_rerank_through_dashscope(
    start_emulator: StartEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from langchain_core.documents import Document as LangChainDocument
    from tests.cli.helpers import run

    from rerank_langchain import RerankCompressor

    monkeypatch.setenv("DASHSCOPE_API_KEY", KEY)
    emu = start_emulator("dashscope", api_key=KEY)
    args = ["--provider", "dashscope", "--base-url", emu.base_url, "--instruction", "Find fruit", "--format", "json"]
    done = run(QUERY, "-", *args, stdin="\n".join(DOCS) + "\n")
    assert done.returncode == 0, done.stderr
    assert [row["index"] for row in json.loads(done.stdout)["results"]][:2] == [2, 1]
    assert emu.requests[0].body["parameters"]["instruct"] == "Find fruit"
    config = {"provider": "dashscope", "base_url": emu.base_url}
    with RerankCompressor(reranker=config, top_n=2) as compressor:
        ranked = compressor.compress_documents([LangChainDocument(text) for text in DOCS], QUERY)
    assert [doc.page_content for doc in ranked] == [DOCS[2], DOCS[1]]


def test_the_emulator_rejects_unknown_fields_at_every_level(start_emulator: StartEmulator) -> None:
    import httpx

    emu = start_emulator("dashscope")
    given: dict[str, Any] = {"query": "q", "documents": ["a"]}
    body: dict[str, Any] = {"model": "m", "input": given, "parameters": {"top_n": 1}}
    assert httpx.post(emu.url, json=body).status_code == 200
    assert httpx.post(emu.url, json={**body, "surprise": True}).status_code in (400, 422)
    assert httpx.post(emu.url, json={**body, "input": {**given, "x": 1}}).status_code == 400
    assert httpx.post(emu.url, json={**body, "parameters": {"x": 1}}).status_code == 400


def test_the_wire_equals_the_official_dashscope_client(
    start_emulator: StartEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    dashscope = pytest.importorskip("dashscope")
    emu = start_emulator("dashscope", api_key=KEY)
    with load_reranker("dashscope:qwen3-rerank", base_url=emu.base_url, api_key=KEY) as reranker:
        ours = reranker.rerank(QUERY, DOCS, top_n=3, instruction="Find recipes")
    monkeypatch.setattr(dashscope, "base_http_api_url", emu.base_url + "/api/v1")
    theirs = dashscope.TextReRank.call(
        model="qwen3-rerank",
        query=QUERY,
        documents=DOCS,
        return_documents=False,
        top_n=3,
        instruct="Find recipes",
        api_key=KEY,
    )
    ours_request, sdk_request = emu.requests
    assert ours_request.path == sdk_request.path == ENDPOINT
    assert ours_request.body == sdk_request.body
    assert ours_request.headers["authorization"] == sdk_request.headers["authorization"]
    assert [(r.index, r.relevance_score) for r in ours.results] == [
        (r.index, r.relevance_score) for r in theirs.output.results
    ]


async def test_the_compatible_endpoint_sends_instruct_at_the_top_level(start_emulator: StartEmulator) -> None:
    emu = start_emulator("dashscope-compatible", api_key=KEY)
    options = {"instruction": "Retrieve semantically similar text."}
    with load_reranker(
        "dashscope-compatible", base_url=emu.base_url + "/compatible-api/v1", api_key=KEY, options=options
    ) as reranker:
        configured = reranker.rerank(QUERY, DOCS, top_n=2)
        per_call = await reranker.arerank(QUERY, DOCS, instruction="Find recipes")
    first, second = (request.body for request in emu.requests)
    assert first == {
        "model": "qwen3-rerank",
        "query": QUERY,
        "documents": DOCS,
        "top_n": 2,
        "instruct": "Retrieve semantically similar text.",
    }
    assert second["instruct"] == "Find recipes"
    assert emu.requests[0].path == "/compatible-api/v1/reranks"
    assert [r.document.text for r in configured.results] == [DOCS[i] for i in (r.index for r in configured.results)]
    assert configured.usage.total_tokens == sum(len(text.split()) for text in DOCS)
    assert len(per_call.results) == len(DOCS)


def test_the_compatible_wire_equals_alibabas_openai_client_example(start_emulator: StartEmulator) -> None:
    openai = pytest.importorskip("openai")
    emu = start_emulator("dashscope-compatible", api_key=KEY)
    base_url = emu.base_url + "/compatible-api/v1"
    with load_reranker("dashscope-compatible", base_url=base_url, api_key=KEY) as reranker:
        ours = reranker.rerank(QUERY, DOCS, top_n=3, instruction="Find recipes")
    body = {"model": "qwen3-rerank", "query": QUERY, "documents": DOCS, "top_n": 3, "instruct": "Find recipes"}
    with openai.OpenAI(api_key=KEY, base_url=base_url) as client:
        theirs = client.post("/reranks", body=body, cast_to=object)
    ours_request, sdk_request = emu.requests
    assert ours_request.path == sdk_request.path
    assert ours_request.body == sdk_request.body
    assert ours_request.headers["authorization"] == sdk_request.headers["authorization"]
    assert [(r.index, r.relevance_score) for r in ours.results] == [
        (r["index"], r["relevance_score"]) for r in theirs["results"]
    ]
