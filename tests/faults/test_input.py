"""Bad caller input: each case is a typed error that names what to fix, or the right answer.

Every case runs sync and async against a real loopback provider; inputs are checked for mutation afterwards, and
every answer accounts for each input document exactly once.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy
import pytest

from rerank_core import Document, HTTPReranker, InvalidInputError, Reranker, RerankResponse
from tests.support.emulator import ProviderEmulator, overlap_score

Call = Callable[..., RerankResponse]
QUERY = "capital of france"
DOCS = ["paris is the capital of france", "berlin", "the capital"]


@pytest.fixture(scope="module")
def reranker() -> Iterator[HTTPReranker]:
    with (
        ProviderEmulator("generic") as emu,
        HTTPReranker("generic", model="m", base_url=emu.base_url, api_key="k", max_retries=0) as client,
    ):
        yield client


@pytest.fixture(params=["sync", "async"])
def call(request: pytest.FixtureRequest, reranker: HTTPReranker) -> Call:
    if request.param == "sync":
        return reranker.rerank

    def run(*args: Any, **kwargs: Any) -> RerankResponse:
        import asyncio

        return asyncio.run(reranker.arerank(*args, **kwargs))

    return run


def accounted(response: RerankResponse, n: int) -> None:
    """Every input index exactly once, in results or in dropped."""
    seen = [r.index for r in response.results] + [d.index for d in response.dropped]
    assert sorted(seen) == list(range(n))


def rejected(call: Call, match: str, query: object, documents: object, **kwargs: object) -> InvalidInputError:
    before = copy.deepcopy(documents)
    with pytest.raises(InvalidInputError, match=match) as caught:
        call(query, documents, **kwargs)
    assert documents == before
    return caught.value


@pytest.mark.parametrize(
    ("documents", "match"),
    [
        (None, "documents must be a list.*not NoneType"),
        ("just a string", "documents must be a list.*not str"),
        (b"bytes", "documents must be a list.*not bytes"),
        ({"text": "a dict, not a list"}, "documents must be a list.*not dict"),
        (42, "documents must be a list.*not int"),
        (["ok", None], r"documents\[1\] has type NoneType"),
        (["ok", 7], r"documents\[1\] has type int"),
        ([b"bytes"], r"documents\[0\] has type bytes"),
        ([{"title": "no text"}], r"documents\[0\] is a mapping without a string 'text'"),
        ([{"text": 5}], r"documents\[0\] is a mapping without a string 'text'"),
        ([{"text": None}], r"documents\[0\] is a mapping without a string 'text'"),
        ([{"text": "x", "metadata": ["a"]}], r"documents\[0\]\['metadata'\] must be a mapping"),
        ([{"text": "x", "metadata": "a=b"}], r"documents\[0\]\['metadata'\] must be a mapping"),
        (["ok", "bad \ud800 surrogate"], r"documents\[1\] holds an unpaired surrogate \(U\+D800\)"),
        ([{"text": "\udfff"}], r"documents\[0\]\['text'\] holds an unpaired surrogate"),
        ([Document(text="a \udc80")], r"documents\[0\]\.text holds an unpaired surrogate"),
    ],
)
def test_bad_documents(call: Call, documents: object, match: str) -> None:
    rejected(call, match, QUERY, documents)


@pytest.mark.parametrize(
    ("query", "match"),
    [
        (None, "query must be a str, not NoneType"),
        (5, "query must be a str, not int"),
        (b"q", "query must be a str, not bytes"),
        ("", "query is empty or blank"),
        ("  \n\t ", "query is empty or blank"),
        ("bad \ud83d", r"query holds an unpaired surrogate \(U\+D83D\)"),
    ],
)
def test_bad_queries(call: Call, query: object, match: str) -> None:
    rejected(call, match, query, list(DOCS))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"top_n": 0}, "top_n must be a positive integer or None, not 0"),
        ({"top_n": -1}, "top_n must be a positive integer or None, not -1"),
        ({"top_n": True}, "top_n must be a positive integer or None, not bool"),
        ({"top_n": 2.0}, "top_n must be a positive integer or None, not float"),
        ({"top_n": 2.5}, "top_n must be a positive integer or None, not float"),
        ({"top_n": "2"}, "top_n must be a positive integer or None, not str"),
        ({"top_n": numpy.int64(0)}, "top_n must be a positive integer"),
        ({"score_threshold": "0.5"}, "score_threshold must be a number or None, not str"),
        ({"score_threshold": True}, "score_threshold must be a number or None, not bool"),
        ({"score_threshold": math.nan}, "score_threshold must be finite"),
        ({"score_threshold": -math.inf}, "score_threshold must be finite"),
        ({"score_threshold": numpy.float32("nan")}, "score_threshold must be finite"),
    ],
)
def test_bad_cut_offs(call: Call, kwargs: dict[str, object], match: str) -> None:
    rejected(call, match, QUERY, list(DOCS), **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "kept"),
    [
        ({"top_n": numpy.int64(2)}, 2),
        ({"top_n": numpy.int32(1)}, 1),
        ({"top_n": 10**12}, 3),
        ({"score_threshold": numpy.float32(0.5)}, 1),
        ({"score_threshold": numpy.float64(0.0)}, 3),
        ({"score_threshold": 0}, 3),
        ({"top_n": numpy.int64(2), "score_threshold": numpy.float32(0.3)}, 2),
    ],
)
def test_every_number_type_is_accepted(call: Call, kwargs: dict[str, object], kept: int) -> None:
    response = call(QUERY, list(DOCS), **kwargs)
    assert len(response.results) == kept
    assert response.results[0].document.text == DOCS[0]
    accounted(response, len(DOCS))


def test_nul_and_non_ascii_text_is_scored(call: Call) -> None:
    docs = ["capital\x00of france", "zürich 北京 🚀", "a\x00\x00b"]
    response = call("capital of france", docs)
    assert [r.document.text for r in sorted(response.results, key=lambda r: r.index)] == docs
    assert response.results[0].relevance_score == overlap_score("capital of france", docs[0])
    accounted(response, len(docs))


def test_a_10_mb_document_is_returned_whole(call: Call) -> None:
    big = "capital " + "x" * (10 * 1024 * 1024)
    response = call(QUERY, ["berlin", big])
    assert response.results[0].index == 1
    assert response.results[0].document.text is big
    accounted(response, 2)


@pytest.mark.slow
def test_100k_documents_each_come_back_once_with_their_own_score(reranker: HTTPReranker) -> None:
    docs: list[dict[str, Any]] = [
        {"text": f"doc {i} {'capital' if i % 7 == 0 else 'other'}", "id": i} for i in range(100_000)
    ]
    before = copy.deepcopy(docs)
    response = reranker.rerank("capital", docs, top_n=50_000)
    assert docs == before
    accounted(response, len(docs))
    for result in response.results[:100]:
        assert result.document.id == result.index
        assert result.relevance_score == overlap_score("capital", docs[result.index]["text"])


def test_mappings_documents_and_metadata_survive_unchanged(call: Call) -> None:
    meta = {"nested": {"list": [1, 2]}, "n": 3}
    docs: list[Any] = [
        {"text": "paris capital france", "id": 7, "metadata": meta, "source": "wiki"},
        Document(text="the capital", id="d2", metadata={"k": "v"}),
        "plain",
    ]
    before = copy.deepcopy(docs)
    response = call(QUERY, docs)
    assert docs == before
    by_index = {r.index: r.document for r in response.results}
    assert by_index[0].id == 7
    assert by_index[0].metadata == {**meta, "source": "wiki"}
    assert by_index[1] is docs[1]
    accounted(response, 3)


def test_duplicate_documents_are_all_returned(call: Call) -> None:
    docs = ["same text", "same text", "capital of france", "same text"]
    response = call(QUERY, docs)
    accounted(response, 4)
    assert [r.index for r in response.results if r.document.text == "same text"] == [0, 1, 3]


def test_input_errors_are_raised_before_anything_is_sent() -> None:
    class Counting(Reranker):
        calls = 0

        def _score(self, query: str, documents: list[Document], top_n: int | None) -> Any:
            Counting.calls += 1
            raise AssertionError("must not be reached")

        async def _ascore(self, query: str, documents: list[Document], top_n: int | None) -> Any:
            return self._score(query, documents, top_n)

    with pytest.raises(InvalidInputError):
        Counting().rerank(" ", ["a"])
    with pytest.raises(InvalidInputError):
        Counting().rerank("q", ["a", 1])  # type: ignore[list-item]
    assert Counting.calls == 0
