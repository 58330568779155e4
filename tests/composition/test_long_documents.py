"""Long documents: a needle deep inside a long document is found with "chunk" and missed with "truncate"."""

from __future__ import annotations

import itertools

import pytest

from rerank_core import ChunkingReranker, ConfigurationError, RerankResponse, TorchCrossEncoder, load_reranker
from rerank_core.chunking import approximate_tokens, split_windows
from rerank_core.config import default_overlap
from rerank_core.models import Document
from tests.composition.helpers import first_words_scorer
from tests.support.emulator import ProviderEmulator
from tests.support.fixtures import StartEmulator

QUERY = "eiffel tower height meters"
FILLER = "the river flows past old stone houses and quiet gardens in the morning light"


def long_document(words: int = 900, needle_at: int = 700) -> str:
    filler = (FILLER.split() * (words // len(FILLER.split()) + 1))[:words]
    return " ".join(
        [*filler[:needle_at], "the", "eiffel", "tower", "height", "is", "330", "meters", *filler[needle_at:]]
    )


DOCS = [
    "a short note about the tower of london",  # one query word
    long_document(),  # all four query words, 700 words in
    "height of mountains in meters",  # two query words
    "a guide to paris museums",
]


def config(emu: ProviderEmulator, **extra: object) -> dict[str, object]:
    return {"provider": "generic", "model": "m", "base_url": emu.base_url, "api_key": "k", "max_retries": 0, **extra}


def assert_every_document_once(response: RerankResponse, n: int) -> None:
    seen = [r.index for r in response.results] + [d.index for d in response.dropped]
    assert sorted(seen) == list(range(n))


def test_needle_ranks_first_with_chunk_and_not_with_truncate(start_emulator: StartEmulator) -> None:
    emu = start_emulator("generic", scorer=first_words_scorer(200))  # a model that reads 200 words
    truncated = load_reranker(config(emu)).rerank(QUERY, DOCS)
    chunked = load_reranker(config(emu, long_documents="chunk", max_tokens_per_document=150)).rerank(QUERY, DOCS)

    assert truncated.results[0].index != 1
    assert chunked.results[0].index == 1
    assert chunked.results[0].relevance_score > truncated.results[0].relevance_score
    assert_every_document_once(chunked, len(DOCS))


def test_winning_window_is_recorded_and_the_original_document_returned(start_emulator: StartEmulator) -> None:
    emu = start_emulator("generic", scorer=first_words_scorer(200))
    docs = [Document(text=t, id=f"doc-{i}", metadata={"i": i}) for i, t in enumerate(DOCS)]
    response = load_reranker(config(emu, long_documents="chunk", max_tokens_per_document=150)).rerank(QUERY, docs)

    best = response.results[0]
    assert best.document == docs[1]  # the caller's document, not a window of it
    assert best.window is not None
    assert "eiffel tower height is 330 meters" in best.window.text
    assert DOCS[1][best.window.start : best.window.end] == best.window.text
    assert all(r.window is None for r in response.results[1:])  # short documents are sent whole


def test_all_windows_go_in_one_request_and_short_documents_are_untouched(start_emulator: StartEmulator) -> None:
    emu = start_emulator("generic", scorer=first_words_scorer(200))
    load_reranker(config(emu, long_documents="chunk", max_tokens_per_document=150)).rerank(QUERY, DOCS, top_n=2)

    assert emu.request_count == 1
    sent = emu.requests[0].body["documents"]
    windows = len(split_windows(DOCS[1], 150, default_overlap(150)))
    assert len(sent) == len(DOCS) - 1 + windows
    assert DOCS[0] in sent
    assert DOCS[2] in sent
    assert "top_n" not in emu.requests[0].body  # max-pooling needs every window's score


def test_top_n_and_threshold_still_account_for_every_document(start_emulator: StartEmulator) -> None:
    emu = start_emulator("generic", scorer=first_words_scorer(200))
    reranker = load_reranker(config(emu, long_documents="chunk", max_tokens_per_document=150))
    response = reranker.rerank(QUERY, DOCS, top_n=2, score_threshold=0.2)
    assert [r.index for r in response.results] == [1, 2]
    assert_every_document_once(response, len(DOCS))


async def test_async_chunking_matches_sync(start_emulator: StartEmulator) -> None:
    emu = start_emulator("generic", scorer=first_words_scorer(200))
    reranker = load_reranker(config(emu, long_documents="chunk", max_tokens_per_document=150))
    sync = reranker.rerank(QUERY, DOCS)
    asynchronous = await reranker.arerank(QUERY, DOCS)
    assert sync.results == asynchronous.results
    await reranker.aclose()


def test_windows_cover_the_text_overlap_and_respect_the_budget() -> None:
    text = long_document(words=1000, needle_at=500)
    budget, overlap = 100, 20
    spans = split_windows(text, budget, overlap)

    assert spans[0][0] == 0
    assert spans[-1][1] == len(text)
    for (start, end), (next_start, _) in itertools.pairwise(spans):
        assert next_start < end  # consecutive windows overlap ...
        assert next_start > start  # ... and always move forward
    for start, end in spans:
        assert sum(approximate_tokens(w) for w in text[start:end].split()) <= budget
    assert split_windows("short text", budget, overlap) == [(0, len("short text"))]


def test_a_small_budget_without_an_overlap_derives_one_that_fits(start_emulator: StartEmulator) -> None:
    emu = start_emulator("generic")
    reranker = load_reranker(config(emu, long_documents="chunk", max_tokens_per_document=64))
    chunker = reranker
    assert isinstance(chunker, ChunkingReranker)
    assert chunker.overlap == default_overlap(64) == 8
    response = reranker.rerank(QUERY, DOCS)
    assert sorted(r.index for r in response.results) == list(range(len(DOCS)))
    assert ChunkingReranker(chunker.inner, max_tokens_per_document=16).overlap == 2


def test_chunk_settings_are_validated() -> None:
    with pytest.raises(ConfigurationError, match="chunk_overlap"):
        load_reranker(
            {"provider": "local", "long_documents": "chunk", "max_tokens_per_document": 50, "chunk_overlap": 50}
        )


def test_local_model_chunks_with_its_real_tokenizer(tiny_cross_encoder: str) -> None:
    reranker = load_reranker(
        {
            "provider": "local",
            "model": tiny_cross_encoder,
            "options": {"local_files_only": True},
            "long_documents": "chunk",
            "max_tokens_per_document": 60,
            "chunk_overlap": 10,
        }
    )
    assert isinstance(reranker, ChunkingReranker)
    local = reranker.inner
    assert isinstance(local, TorchCrossEncoder)
    docs = [long_document(words=400, needle_at=300), "the eiffel tower", "paris"]

    response = reranker.rerank(QUERY, docs)

    assert_every_document_once(response, len(docs))
    long_result = next(r for r in response.results if r.index == 0)
    assert long_result.window is not None
    windows = split_windows(docs[0], 60, 10, reranker.tokens.spans)
    assert len(windows) > 1
    sizes = [local.count_tokens(docs[0][start:end]) for start, end in windows]
    assert max(sizes) <= 60
    assert min(sizes[:-1]) >= 50  # windows are filled, not cut short
    # The document's score is the max over its windows, each scored exactly as the model scores it alone.
    window_scores = local.rerank(QUERY, [docs[0][start:end] for start, end in windows])
    assert long_result.relevance_score == pytest.approx(max(r.relevance_score for r in window_scores.results), abs=1e-6)
    assert long_result.window.text == docs[0][long_result.window.start : long_result.window.end]


def test_local_budget_leaves_room_for_the_query(tiny_cross_encoder: str) -> None:
    reranker = load_reranker(
        {"provider": "local", "model": tiny_cross_encoder, "options": {"local_files_only": True, "max_length": 64}}
        | {"long_documents": "chunk", "max_tokens_per_document": 500, "chunk_overlap": 10}
    )
    assert isinstance(reranker, ChunkingReranker)
    local = reranker.inner
    assert isinstance(local, TorchCrossEncoder)
    room = reranker.tokens.room
    assert room is not None
    budget = room(QUERY)
    assert budget == 64 - local.count_tokens(QUERY) - 3
    response = reranker.rerank(QUERY, [long_document(words=300, needle_at=250)])
    window = response.results[0].window
    assert window is not None
    assert local.count_tokens(window.text) <= budget
