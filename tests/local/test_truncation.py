"""`max_length`: documents are truncated to fit, the query never is."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from rerank_core import ConfigurationError, InvalidInputError, TorchCrossEncoder

QUERY = "what is the capital of france"
LONG_DOC = " ".join(["paris is the capital of france and a city by the river"] * 30)


def manual_logit(path: str, query_ids: list[int], doc_ids: list[int]) -> float:
    """Score one hand-built pair: [CLS] query [SEP] document [SEP]."""
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path)
    ids = [tokenizer.cls_token_id, *query_ids, tokenizer.sep_token_id, *doc_ids, tokenizer.sep_token_id]
    types = [0] * (len(query_ids) + 2) + [1] * (len(doc_ids) + 1)
    with torch.inference_mode():
        out = model(input_ids=torch.tensor([ids]), token_type_ids=torch.tensor([types])).logits
    return float(out[0, 0])


def test_long_document_is_cut_at_the_end_and_the_query_is_kept(tiny_cross_encoder: str) -> None:
    max_length = 24
    reranker = TorchCrossEncoder(tiny_cross_encoder, max_length=max_length, activation="none", local_files_only=True)
    tokenizer = reranker.tokenizer
    query_ids = tokenizer(QUERY, add_special_tokens=False)["input_ids"]
    doc_ids = tokenizer(LONG_DOC, add_special_tokens=False)["input_ids"]
    room = max_length - len(query_ids) - 3
    assert len(doc_ids) > room > 0

    got = reranker.predict_logits(QUERY, [LONG_DOC])[0]
    assert got == pytest.approx(manual_logit(tiny_cross_encoder, query_ids, doc_ids[:room]), abs=1e-5)
    # Cutting the query instead would give a different score.
    cut_query = manual_logit(tiny_cross_encoder, query_ids[:-4], doc_ids[: room + 4])
    assert abs(got - cut_query) > 1e-3
    assert reranker.rerank(QUERY, [LONG_DOC]).usage.total_tokens == max_length


def test_text_after_the_budget_does_not_change_the_score(tiny_cross_encoder: str) -> None:
    reranker = TorchCrossEncoder(tiny_cross_encoder, max_length=24, local_files_only=True)
    a, b = reranker.predict_logits(QUERY, [LONG_DOC, LONG_DOC + " zebra xylophone water fire"])
    assert a == pytest.approx(b, abs=1e-6)


def test_max_length_defaults_to_the_model_limit_capped_at_512(tiny_cross_encoder: str) -> None:
    assert TorchCrossEncoder(tiny_cross_encoder, local_files_only=True).max_length == 512


def test_max_length_beyond_the_model_limit_is_rejected(tiny_cross_encoder: str) -> None:
    with pytest.raises(ConfigurationError, match="exceeds the model's limit of 512"):
        TorchCrossEncoder(tiny_cross_encoder, max_length=1024, local_files_only=True).warm_up()


def test_query_that_leaves_no_room_for_the_document_is_invalid_input(tiny_cross_encoder: str) -> None:
    reranker = TorchCrossEncoder(tiny_cross_encoder, max_length=16, local_files_only=True)
    with pytest.raises(InvalidInputError, match=r"query is \d+ tokens") as caught:
        reranker.rerank("the capital of france " * 10, ["paris"])
    assert caught.value.provider == "local"
    assert "max_length" in str(caught.value)
