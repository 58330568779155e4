"""bge-reranker-v2-gemma and mxbai-rerank v2 on tiny causal LMs built in the session (picked by folder name, as
a hub id would be), against their model cards' recipes written out here with plain transformers and full logits."""

from __future__ import annotations

import math

import pytest

from rerank_core.local.recipes import BGE_GEMMA_PROMPT, MXBAI_PREFIX, MXBAI_SUFFIX, MXBAI_TASK
from rerank_core.local.torch_engine import TorchCrossEncoder

pytest.importorskip("torch")

QUERY = "what is the capital of france"
DOCS = [
    "Paris is the capital of France, a city by the river Seine.",
    "Berlin is a big city in Germany.",
    "The capital of France is Paris, a city by the river. " * 40,
    "water and fire",
]
MAX_LENGTH = 320  # the long document is cut; the tiny tokenizer spends ~230 tokens on the mxbai prompt


@pytest.fixture(scope="module")
def tiny_gemma(tmp_path_factory: pytest.TempPathFactory) -> str:
    from tests.support.tiny_models import build_tiny_causal_lm

    return build_tiny_causal_lm(tmp_path_factory.mktemp("m") / "bge-reranker-v2-gemma", "gemma")


@pytest.fixture(scope="module")
def tiny_mxbai(tmp_path_factory: pytest.TempPathFactory) -> str:
    from tests.support.tiny_models import build_tiny_causal_lm

    return build_tiny_causal_lm(tmp_path_factory.mktemp("m") / "mxbai-rerank-base-v2", "qwen2")


def last_logits(folder: str, rows: list[list[int]]) -> object:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(folder)
    batch = tokenizer.pad({"input_ids": rows}, padding=True, return_tensors="pt")
    with torch.no_grad():
        return model(**batch).logits[:, -1, :]


def gemma_card(folder: str, prompt: str | None, max_length: int) -> list[float]:
    """FlagEmbedding's get_inputs: BOS + "A: q", then sep + "B: passage" cut to fit (only_second), then sep +
    prompt; the "Yes" logit, sigmoid."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    prompt = BGE_GEMMA_PROMPT if prompt is None else prompt
    sep = tokenizer("\n", add_special_tokens=False)["input_ids"]
    tail = sep + tokenizer(prompt, add_special_tokens=False)["input_ids"]
    rows = []
    for doc in DOCS:
        first = [tokenizer.bos_token_id] + tokenizer(f"A: {QUERY}", add_special_tokens=False)["input_ids"]
        second = sep + tokenizer(f"B: {doc}", add_special_tokens=False)["input_ids"]
        second = second[: max_length - len(tail) - len(first)]
        rows.append(first + second + tail)
    logits = last_logits(folder, rows)
    yes = tokenizer("Yes", add_special_tokens=False)["input_ids"][0]
    return [1 / (1 + math.exp(-float(x))) for x in logits[:, yes]]  # type: ignore[index]


def mxbai_card(folder: str, instruction: str | None, max_length: int) -> list[float]:
    """mxbai-rerank v2: prefix + "[instruction: i\\n]query: q", then sep + "document: d" cut to fit, then sep +
    task prompt + suffix; sigmoid of logit("1") - logit("0")."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)

    def ids(text: str) -> list[int]:
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])

    sep = ids("\n")
    query = f"instruction: {instruction}\nquery: {QUERY}" if instruction else f"query: {QUERY}"
    rows = []
    for doc in DOCS:
        head = ids(MXBAI_PREFIX) + ids(query)
        tail = sep + ids(MXBAI_TASK) + ids(MXBAI_SUFFIX)
        middle = (sep + ids(f"document: {doc}"))[: max_length - len(head) - len(tail)]
        rows.append(head + middle + tail)
    logits = last_logits(folder, rows)
    one, zero = ids("1")[0], ids("0")[0]
    return [1 / (1 + math.exp(-float(row[one] - row[zero]))) for row in logits]  # type: ignore[attr-defined]


def ours(folder: str, instruction: str | None) -> list[float]:
    reranker = TorchCrossEncoder(folder, max_length=MAX_LENGTH)
    lengths = [len(ids) for ids in reranker._encode(QUERY, DOCS, instruction)["input_ids"]]
    assert lengths[2] == MAX_LENGTH  # the long document is cut ...
    assert max(lengths[:2] + lengths[3:]) < MAX_LENGTH  # ... and only it
    response = reranker.rerank(QUERY, DOCS, instruction=instruction)
    scores = [0.0] * len(DOCS)
    for result in response.results:
        scores[result.index] = result.relevance_score
    return scores


def ranking(scores: list[float]) -> list[int]:
    return sorted(range(len(scores)), key=lambda i: (-scores[i], i))


@pytest.mark.parametrize("instruction", [None, "Predict whether passage B names the city asked for in A."])
def test_bge_reranker_v2_gemma_follows_its_card(tiny_gemma: str, instruction: str | None) -> None:
    got, want = ours(tiny_gemma, instruction), gemma_card(tiny_gemma, instruction, MAX_LENGTH)
    assert got == pytest.approx(want, abs=1e-4)
    assert ranking(got) == ranking(want)
    assert len({round(x, 4) for x in got}) == len(DOCS)


@pytest.mark.parametrize("instruction", [None, "Find the passage naming the city"])
def test_mxbai_rerank_v2_follows_its_card(tiny_mxbai: str, instruction: str | None) -> None:
    got, want = ours(tiny_mxbai, instruction), mxbai_card(tiny_mxbai, instruction, MAX_LENGTH)
    assert got == pytest.approx(want, abs=1e-4)
    assert ranking(got) == ranking(want)
    assert len({round(x, 4) for x in got}) == len(DOCS)
