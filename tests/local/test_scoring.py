"""The public contract: RerankResponse, ordering, top_n, activations, sync and async, ids and metadata."""

from __future__ import annotations

import math
import threading
from typing import Any

import pytest

from rerank_core import Document, TorchCrossEncoder, load_reranker
from rerank_core.local.torch_engine import length_sorted_batches


@pytest.fixture
def reranker(tiny_cross_encoder: str) -> TorchCrossEncoder:
    return TorchCrossEncoder(tiny_cross_encoder, local_files_only=True)


def test_rerank_returns_every_document_sorted(reranker: TorchCrossEncoder, query: str, docs: list[str]) -> None:
    response = reranker.rerank(query, docs)
    assert response.provider == "local"
    assert response.model == reranker.model_name
    assert response.score_kind == "probability"
    assert sorted(r.index for r in response.results) == list(range(len(docs)))
    scores = [r.relevance_score for r in response.results]
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 < s < 1.0 for s in scores)
    assert len(set(scores)) == len(scores), "tiny model should tell documents apart"
    assert [r.document.text for r in response.results] == [docs[r.index] for r in response.results]
    assert response.dropped == []


def test_scores_match_the_raw_logits(reranker: TorchCrossEncoder, query: str, docs: list[str]) -> None:
    logits = reranker.predict_logits(query, docs)
    response = reranker.rerank(query, docs)
    for result in response.results:
        assert result.relevance_score == pytest.approx(1 / (1 + math.exp(-logits[result.index])), abs=1e-12)


def test_activation_none_returns_logits(tiny_cross_encoder: str, query: str, docs: list[str]) -> None:
    raw = TorchCrossEncoder(tiny_cross_encoder, activation="none", local_files_only=True)
    response = raw.rerank(query, docs)
    assert response.score_kind == "logit"
    logits = raw.predict_logits(query, docs)
    assert {r.index: r.relevance_score for r in response.results} == pytest.approx(dict(enumerate(logits)))
    assert any(r.relevance_score > 1.0 or r.relevance_score < 0.0 for r in response.results)


def test_normalize_sigmoid_turns_logits_into_probabilities(
    tiny_cross_encoder: str, reranker: TorchCrossEncoder, query: str, docs: list[str]
) -> None:
    normalized = TorchCrossEncoder(tiny_cross_encoder, activation="none", normalize="sigmoid", local_files_only=True)
    got = normalized.rerank(query, docs)
    want = reranker.rerank(query, docs)
    assert got.score_kind == "probability"
    assert [r.index for r in got.results] == [r.index for r in want.results]
    assert [r.relevance_score for r in got.results] == pytest.approx([r.relevance_score for r in want.results])


def test_two_label_model_scores_softmax_of_label_one(tiny_cross_encoder_2label: str, query: str) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    texts = ["Paris is the capital", "zebra", "water and fire"]
    tokenizer = AutoTokenizer.from_pretrained(tiny_cross_encoder_2label)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_cross_encoder_2label)
    with torch.inference_mode():
        encoded = tokenizer([query] * 3, texts, padding=True, return_tensors="pt")
        want = torch.softmax(model(**encoded).logits, dim=-1)[:, 1].tolist()

    for activation in ("auto", "softmax", "sigmoid"):
        reranker = TorchCrossEncoder(tiny_cross_encoder_2label, activation=activation, local_files_only=True)
        response = reranker.rerank(query, texts)
        assert {r.index: r.relevance_score for r in response.results} == pytest.approx(dict(enumerate(want)))


def test_softmax_on_a_single_logit_model_is_a_configuration_error(tiny_cross_encoder: str) -> None:
    from rerank_core import ConfigurationError

    with pytest.raises(ConfigurationError, match="two-label"):
        TorchCrossEncoder(tiny_cross_encoder, activation="softmax", local_files_only=True).warm_up()


def test_top_n_keeps_the_best_and_accounts_for_the_rest(
    reranker: TorchCrossEncoder, query: str, docs: list[str]
) -> None:
    full = reranker.rerank(query, docs)
    top = reranker.rerank(query, docs, top_n=2)
    assert top.results == full.results[:2]
    assert sorted(d.index for d in top.dropped) == sorted(r.index for r in full.results[2:])
    assert {d.reason for d in top.dropped} == {"top_n"}


def test_score_threshold_drops_with_a_reason(reranker: TorchCrossEncoder, query: str, docs: list[str]) -> None:
    full = reranker.rerank(query, docs)
    cut = full.results[2].relevance_score
    response = reranker.rerank(query, docs, score_threshold=cut)
    assert [r.index for r in response.results] == [r.index for r in full.results[:3]]
    assert {d.reason for d in response.dropped} == {"score_threshold"}


def test_empty_input_returns_empty_without_loading(tiny_cross_encoder: str) -> None:
    reranker = TorchCrossEncoder(tiny_cross_encoder, local_files_only=True)
    response = reranker.rerank("q", [])
    assert response.results == []
    assert response.provider == "local"
    assert reranker._network is None


async def test_arerank_matches_rerank_and_runs_off_the_event_loop_thread(
    reranker: TorchCrossEncoder, query: str, docs: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[int] = []
    score = reranker._score

    def spy(*args: object) -> object:
        threads.append(threading.get_ident())
        return score(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(reranker, "_score", spy)
    got = await reranker.arerank(query, docs, top_n=3)
    assert threads
    assert threads[0] != threading.get_ident()
    assert got == reranker.rerank(query, docs, top_n=3)
    assert (await reranker.arerank(query, [])).results == []


def test_ids_and_metadata_survive_and_inputs_are_not_mutated(reranker: TorchCrossEncoder, query: str) -> None:
    mapping: dict[str, Any] = {"text": "zebra", "id": 7, "metadata": {"page": 2}}
    inputs: list[Document | dict[str, Any]] = [
        Document("Paris is the capital of France", id="a", metadata={"src": "wiki"}),
        mapping,
    ]
    snapshot = [inputs[0], {**mapping, "metadata": dict(mapping["metadata"])}]
    response = reranker.rerank(query, inputs)
    by_index = {r.index: r.document for r in response.results}
    assert by_index[0] == inputs[0]
    assert by_index[1].id == 7
    assert by_index[1].metadata == {"page": 2}
    assert inputs == snapshot


def test_usage_counts_the_tokens_scored(reranker: TorchCrossEncoder, query: str, docs: list[str]) -> None:
    tokenizer = reranker.tokenizer
    want = sum(len(ids) for ids in tokenizer([query] * len(docs), docs)["input_ids"])
    assert reranker.rerank(query, docs).usage.total_tokens == want


def test_batching_does_not_change_scores(tiny_cross_encoder: str, query: str, docs: list[str]) -> None:
    per_pair = TorchCrossEncoder(tiny_cross_encoder, batch_size=1, local_files_only=True).predict_logits(query, docs)
    for batch_size, max_batch_tokens in ((3, None), (64, None), (64, 40), (32, 1280)):
        batched = TorchCrossEncoder(
            tiny_cross_encoder, batch_size=batch_size, max_batch_tokens=max_batch_tokens, local_files_only=True
        )
        assert batched.predict_logits(query, docs) == pytest.approx(per_pair, abs=1e-5)


def test_token_budget_grows_batches_of_short_pairs_and_shrinks_batches_of_long_ones() -> None:
    def sizes(lengths: list[int], budget: int) -> list[int]:
        return [len(batch) for batch in length_sorted_batches(lengths, 32, budget)]

    assert sizes([48] * 40, 1280) == [26, 14]
    assert sizes([312] * 10, 1280) == [4, 4, 2]
    assert sizes([600] * 3, 500) == [1, 1, 1], "a pair over the budget still gets a batch of its own"
    mixed = [300, 20, 25, 310, 22, 305]
    batches = length_sorted_batches(mixed, 32, 640)
    assert batches == [[3, 5], [0, 2], [4, 1]]  # each batch is padded to its first (longest) pair
    assert all(len(batch) * max(mixed[i] for i in batch) <= 640 for batch in batches)


def test_int8_keeps_small_batches_by_default(tiny_cross_encoder: str) -> None:
    assert TorchCrossEncoder(tiny_cross_encoder).batch_size == 32
    assert TorchCrossEncoder(tiny_cross_encoder, quantize="int8").batch_size == 4
    assert TorchCrossEncoder(tiny_cross_encoder, quantize="int8", batch_size=16).batch_size == 16


def test_length_sorted_batches_group_similar_lengths_and_cover_every_index() -> None:
    lengths = [5, 90, 7, 88, 6, 91, 3]
    batches = length_sorted_batches(lengths, 2)
    assert batches == [[5, 1], [3, 2], [4, 0], [6]]
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))


def test_load_reranker_local_spec(tiny_cross_encoder: str, query: str, docs: list[str]) -> None:
    reranker = load_reranker(f"local:{tiny_cross_encoder}", local_files_only=True, batch_size=2)
    assert isinstance(reranker, TorchCrossEncoder)
    assert reranker.batch_size == 2
    assert reranker.rerank(query, docs).results[0].index == (
        TorchCrossEncoder(tiny_cross_encoder, local_files_only=True).rerank(query, docs).results[0].index
    )


def test_count_tokens_uses_the_model_tokenizer(reranker: TorchCrossEncoder) -> None:
    assert reranker.count_tokens("the capital, Seine") == len(["the", "capital", ",", "s", "##e", "##i", "##n", "##e"])
    assert reranker.count_tokens("") == 0
    assert reranker._network is None, "counting tokens must not load the weights"
