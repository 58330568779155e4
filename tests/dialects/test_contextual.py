"""Contextual AI: the instruction per call and from config, per-document metadata sent only when asked (in input
order, an empty string for a document without), and the ranking an instruction over that metadata changes."""

from __future__ import annotations

import pytest
from tests.dialects.test_end_to_end import KEY
from tests.support.fixtures import StartEmulator

from rerank_core import ConfigurationError, Document, load_reranker

QUERY = "red apple pie"
DOCS = [
    Document(text="apple pie red", id="a", metadata={"source": "archive", "year": 2001}),
    Document(text="red apple", id="b", metadata={"source": "news", "year": 2026}),
    Document(text="blue sky", id="c"),
]
PREFER_RECENT = "Prefer recent sources over the archive"


def test_metadata_stays_home_unless_asked(start_emulator: StartEmulator) -> None:
    emu = start_emulator("contextual", api_key=KEY)
    with load_reranker("contextual", base_url=emu.base_url, api_key=KEY) as reranker:
        response = reranker.rerank(QUERY, DOCS, instruction=PREFER_RECENT)
    assert emu.requests[0].body == {
        "model": "ctxl-rerank-v2-instruct-multilingual",
        "query": QUERY,
        "documents": [doc.text for doc in DOCS],
        "instruction": PREFER_RECENT,
    }
    assert [x.document.id for x in response.results][:2] == ["a", "b"]  # no metadata: the instruction cannot act


async def test_an_instruction_over_sent_metadata_changes_the_ranking(start_emulator: StartEmulator) -> None:
    emu = start_emulator("contextual", api_key=KEY)
    options = {"send_metadata": ["source", "year"], "instruction": PREFER_RECENT}
    with load_reranker("contextual", base_url=emu.base_url, api_key=KEY, options=options) as reranker:
        response = await reranker.arerank(QUERY, DOCS)
    body = emu.requests[0].body
    assert body["metadata"] == ["source: archive\nyear: 2001", "source: news\nyear: 2026", ""]
    assert body["instruction"] == PREFER_RECENT
    assert [x.document.id for x in response.results] == ["b", "a", "c"]
    assert response.results[0].document.metadata == {"source": "news", "year": 2026}  # the caller's own, intact
    assert DOCS[0].metadata == {"source": "archive", "year": 2001}


def test_all_metadata_with_true_and_a_per_call_instruction_overrides_the_configured_one(
    start_emulator: StartEmulator,
) -> None:
    emu = start_emulator("contextual", api_key=KEY)
    options = {"send_metadata": True, "instruction": "Prefer the archive"}
    with load_reranker(
        "contextual:ctxl-rerank-v2-instruct-multilingual-mini", base_url=emu.base_url, api_key=KEY, options=options
    ) as reranker:
        reranker.rerank(QUERY, DOCS, instruction=PREFER_RECENT, top_n=2)
    body = emu.requests[0].body
    assert body["model"] == "ctxl-rerank-v2-instruct-multilingual-mini"
    assert body["instruction"] == PREFER_RECENT
    assert body["top_n"] == 2
    assert body["metadata"][0] == "source: archive\nyear: 2001"


@pytest.mark.parametrize("bad", ["yes", [], [1], {"source": True}])
def test_send_metadata_takes_a_bool_or_field_names(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="send_metadata"):
        load_reranker("contextual", api_key=KEY, options={"send_metadata": bad})


async def test_the_wire_equals_the_official_contextual_client(start_emulator: StartEmulator) -> None:
    contextual = pytest.importorskip("contextual")
    emu = start_emulator("contextual", api_key=KEY)
    options = {"send_metadata": ["source", "year"]}
    with load_reranker("contextual", base_url=emu.base_url, api_key=KEY, options=options) as reranker:
        ours = reranker.rerank(QUERY, DOCS, instruction=PREFER_RECENT, top_n=2)
    sent = {
        "model": "ctxl-rerank-v2-instruct-multilingual",
        "query": QUERY,
        "documents": [doc.text for doc in DOCS],
        "instruction": PREFER_RECENT,
        "metadata": ["source: archive\nyear: 2001", "source: news\nyear: 2026", ""],
        "top_n": 2,
    }
    with contextual.ContextualAI(api_key=KEY, base_url=emu.base_url + "/v1") as client:
        theirs = client.rerank.create(**sent)
    async with contextual.AsyncContextualAI(api_key=KEY, base_url=emu.base_url + "/v1") as client:
        await client.rerank.create(**sent)
    ours_request, sdk_request, async_sdk_request = emu.requests
    assert ours_request.path == sdk_request.path == async_sdk_request.path
    assert ours_request.body == sdk_request.body == async_sdk_request.body
    assert ours_request.headers["authorization"] == sdk_request.headers["authorization"]
    assert [(r.index, r.relevance_score) for r in ours.results] == [
        (r.index, r.relevance_score) for r in theirs.results
    ]
