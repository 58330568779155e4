"""LLM rerankers on the torch engine: a tiny 2-layer Qwen3 causal LM built in the session, scored with the
Qwen3-Reranker recipe, against the model card's recipe written out here (plain transformers, full logits) and
against sentence-transformers' `CrossEncoder` (its `LogitScore` path, through the folder's chat template)."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from rerank_core import load_reranker
from rerank_core.errors import ConfigurationError, UnsupportedInputError
from rerank_core.local.recipes import QWEN3_INSTRUCTION, QWEN3_PREFIX, QWEN3_SUFFIX
from rerank_core.local.torch_engine import TorchCrossEncoder, choose_dtype

pytest.importorskip("torch")

QUERY = "what is the capital of france"
LONG = "The capital of France is Paris, a city by the river. " * 40
DOCS = [
    "Paris is the capital of France, a city by the river Seine.",
    "Berlin is a big city in Germany.",
    "water and fire are two of the classical elements",
    LONG,
    "",
    "cancer risk in patients with high blood pressure",
]
INSTRUCTION = "Given a question, find the passage naming the city"
MAX_LENGTH = 256  # the long document must be cut; the tiny tokenizer spends ~150 tokens on the prompt


@pytest.fixture(scope="session")
def tiny_qwen3(tmp_path_factory: pytest.TempPathFactory) -> str:
    from tests.support.tiny_models import build_tiny_qwen3_reranker

    return build_tiny_qwen3_reranker(tmp_path_factory.mktemp("tiny-qwen3"))


@pytest.fixture(scope="session")
def tiny_qwen3_seq_cls(tmp_path_factory: pytest.TempPathFactory) -> str:
    from tests.support.tiny_models import build_tiny_qwen3_reranker

    return build_tiny_qwen3_reranker(tmp_path_factory.mktemp("tiny-qwen3-seq-cls"), sequence_classification=True)


def card_scores(folder: str, query: str, docs: list[str], instruction: str | None, max_length: int) -> list[float]:
    """The Qwen3-Reranker model card's recipe: prefix and suffix tokenized apart, the formatted body cut to what is
    left, left padding, P(yes) from the softmax over the [no, yes] logits of the full vocabulary head."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(folder).eval()  # type: ignore[no-untyped-call]
    prefix = tokenizer.encode(QWEN3_PREFIX, add_special_tokens=False)
    suffix = tokenizer.encode(QWEN3_SUFFIX, add_special_tokens=False)
    task = instruction if instruction is not None else QWEN3_INSTRUCTION
    bodies = [f"<Instruct>: {task}\n<Query>: {query}\n<Document>: {doc}" for doc in docs]
    inputs = tokenizer(
        bodies,
        padding=False,
        truncation="longest_first",
        return_attention_mask=False,
        max_length=max_length - len(prefix) - len(suffix),
    )
    inputs["input_ids"] = [prefix + ids + suffix for ids in inputs["input_ids"]]
    batch = tokenizer.pad(inputs, padding=True, return_tensors="pt")
    yes, no = tokenizer.convert_tokens_to_ids("yes"), tokenizer.convert_tokens_to_ids("no")
    with torch.no_grad():
        last = model(**batch).logits[:, -1, :]
    pair = torch.stack([last[:, no], last[:, yes]], dim=1)
    return [float(x) for x in torch.nn.functional.log_softmax(pair, dim=1)[:, 1].exp()]


def ranking(scores: list[float]) -> list[int]:
    return sorted(range(len(scores)), key=lambda i: (-scores[i], i))


def engine_scores(reranker: TorchCrossEncoder, docs: list[str], instruction: str | None = None) -> list[float]:
    reranker.instruction = instruction
    response = reranker.rerank(QUERY, docs)
    scores = [0.0] * len(docs)
    for result in response.results:
        scores[result.index] = result.relevance_score
    return scores


@pytest.mark.parametrize("instruction", [None, INSTRUCTION])
def test_scores_match_the_model_card_recipe(tiny_qwen3: str, instruction: str | None) -> None:
    reranker = TorchCrossEncoder(tiny_qwen3, max_length=MAX_LENGTH)
    ours = engine_scores(reranker, DOCS, instruction)
    card = card_scores(tiny_qwen3, QUERY, DOCS, instruction, MAX_LENGTH)
    assert ours == pytest.approx(card, abs=1e-4)
    assert ranking(ours) == ranking(card)
    assert len(set(round(s, 4) for s in ours)) == len(DOCS)  # the tiny model tells the documents apart


@pytest.mark.parametrize("instruction", [None, INSTRUCTION])
def test_scores_match_sentence_transformers(tiny_qwen3: str, instruction: str | None) -> None:
    from sentence_transformers import CrossEncoder

    reranker = TorchCrossEncoder(tiny_qwen3, max_length=MAX_LENGTH)
    ours = engine_scores(reranker, DOCS, instruction)
    model = CrossEncoder(tiny_qwen3, max_length=MAX_LENGTH, device="cpu")
    theirs = [float(x) for x in model.predict([(QUERY, doc) for doc in DOCS], prompt=instruction)]
    assert ours == pytest.approx(theirs, abs=1e-4)
    assert ranking(ours) == ranking(theirs)


def test_instruction_changes_scores(tiny_qwen3: str) -> None:
    reranker = TorchCrossEncoder(tiny_qwen3, max_length=MAX_LENGTH)
    plain = engine_scores(reranker, DOCS)
    instructed = engine_scores(reranker, DOCS, INSTRUCTION)
    assert max(abs(a - b) for a, b in zip(plain, instructed, strict=True)) > 1e-3


def test_only_the_document_is_cut_and_the_suffix_is_kept(tiny_qwen3: str) -> None:
    reranker = TorchCrossEncoder(tiny_qwen3, max_length=MAX_LENGTH)
    short, long = reranker._encode(QUERY, [DOCS[0], LONG])["input_ids"]
    backend = reranker.backend_tokenizer
    suffix = backend.encode(QWEN3_SUFFIX, add_special_tokens=False).ids
    prefix = backend.encode(QWEN3_PREFIX, add_special_tokens=False).ids
    assert len(long) == MAX_LENGTH
    assert len(short) < MAX_LENGTH
    for ids in (short, long):
        assert ids[-len(suffix) :] == suffix
        assert ids[: len(prefix)] == prefix
    text = reranker.tokenizer.decode(long)
    assert f"<Query>: {QUERY}\n<Document>: The capital of France" in text
    assert LONG.strip() not in text


def test_a_query_that_leaves_no_room_is_refused(tiny_qwen3: str) -> None:
    reranker = TorchCrossEncoder(tiny_qwen3, max_length=MAX_LENGTH)
    with pytest.raises(UnsupportedInputError, match="no room for the document"):
        reranker.rerank("paris " * 200, DOCS[:2])


def test_load_reranker_sync_and_async(tiny_qwen3: str) -> None:
    reranker = load_reranker(f"local:{tiny_qwen3}", options={"max_length": MAX_LENGTH})
    response = reranker.rerank(QUERY, DOCS)
    assert response.score_kind == "probability"
    expected = card_scores(tiny_qwen3, QUERY, DOCS, None, MAX_LENGTH)
    assert [r.index for r in response.results] == ranking(expected)
    assert {r.index: r.relevance_score for r in response.results} == pytest.approx(dict(enumerate(expected)), abs=1e-4)
    again = asyncio.run(reranker.arerank(QUERY, DOCS))
    assert [(r.index, r.relevance_score) for r in again.results] == [
        (r.index, r.relevance_score) for r in response.results
    ]


def test_instruction_from_options(tiny_qwen3: str) -> None:
    reranker = load_reranker(f"local:{tiny_qwen3}", options={"max_length": MAX_LENGTH, "instruction": INSTRUCTION})
    scores = {r.index: r.relevance_score for r in reranker.rerank(QUERY, DOCS).results}
    expected = card_scores(tiny_qwen3, QUERY, DOCS, INSTRUCTION, MAX_LENGTH)
    assert scores == pytest.approx(dict(enumerate(expected)), abs=1e-4)


def test_logit_activation_is_the_log_odds(tiny_qwen3: str) -> None:
    import math

    probabilities = engine_scores(TorchCrossEncoder(tiny_qwen3, max_length=MAX_LENGTH), DOCS)
    logits = TorchCrossEncoder(tiny_qwen3, max_length=MAX_LENGTH, activation="none").predict_logits(QUERY, DOCS)
    assert [1 / (1 + math.exp(-x)) for x in logits] == pytest.approx(probabilities, abs=1e-6)


def test_sequence_classification_conversion_scores_alike(tiny_qwen3: str, tiny_qwen3_seq_cls: str) -> None:
    causal = engine_scores(TorchCrossEncoder(tiny_qwen3, max_length=MAX_LENGTH), DOCS)
    converted = engine_scores(TorchCrossEncoder(tiny_qwen3_seq_cls, max_length=MAX_LENGTH), DOCS)
    assert converted == pytest.approx(causal, abs=1e-4)
    assert ranking(converted) == ranking(causal)


def test_custom_template_reproduces_the_recipe(tiny_qwen3: str) -> None:
    template = QWEN3_PREFIX + "<Instruct>: " + QWEN3_INSTRUCTION + "\n<Query>: {query}\n<Document>: {document}"
    custom = TorchCrossEncoder(
        tiny_qwen3, max_length=MAX_LENGTH, prompt_template=template + QWEN3_SUFFIX, true_token="yes", false_token="no"
    )
    builtin = TorchCrossEncoder(tiny_qwen3, max_length=MAX_LENGTH)
    assert engine_scores(custom, DOCS) == pytest.approx(engine_scores(builtin, DOCS), abs=1e-5)


def copy_with_config(folder: str, destination: Path, **changes: object) -> str:
    shutil.copytree(folder, destination)
    config_file = destination / "config.json"
    config = json.loads(config_file.read_text(encoding="utf-8"))
    config.update(changes)
    config_file.write_text(json.dumps(config), encoding="utf-8")
    return str(destination)


def test_a_causal_lm_without_a_recipe_is_refused(tiny_qwen3: str, tmp_path: Path) -> None:
    folder = copy_with_config(tiny_qwen3, tmp_path / "some-llm", architectures=["LlamaForCausalLM"])
    with pytest.raises(ConfigurationError, match="no known reranking recipe") as caught:
        load_reranker(f"local:{folder}").rerank(QUERY, DOCS[:2])
    assert "prompt_template" in str(caught.value.hint)


def test_a_folder_with_a_newly_initialised_head_is_refused(tiny_qwen3: str, tmp_path: Path) -> None:
    # A decoder with no known reranking head: loading it as a classifier would initialise a random head.
    folder = copy_with_config(tiny_qwen3, tmp_path / "plain-qwen3", architectures=["Qwen3Model"])
    with pytest.raises(ConfigurationError, match="newly initialised"):
        load_reranker(f"local:{folder}").rerank(QUERY, DOCS[:2])


def test_a_bert_backbone_without_a_classifier_is_refused(tmp_path: Path) -> None:
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from tests.support.tiny_models import write_vocab

    vocab = len(write_vocab(tmp_path).read_text(encoding="utf-8").split())
    config = BertConfig(
        vocab_size=vocab, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(tmp_path).save_pretrained(tmp_path)
    with pytest.raises(ConfigurationError, match="newly initialised"):
        load_reranker(f"local:{tmp_path}").rerank(QUERY, DOCS[:2])


def test_an_instruction_for_a_plain_cross_encoder_is_refused(tiny_cross_encoder: str) -> None:
    with pytest.raises(ConfigurationError, match="cannot follow an instruction"):
        TorchCrossEncoder(tiny_cross_encoder, instruction="be nice").rerank(QUERY, DOCS[:2])


@pytest.mark.parametrize(
    "options",
    [
        {"recipe": "qwen4"},
        {"prompt_template": "{query}"},
        {"prompt_template": "{query} {document}"},
        {"recipe": "qwen3-reranker", "prompt_template": "{query} {document}", "true_token": "yes"},
        {"true_token": "yes"},
        {"prompt_template": "{document} then {query}"},
    ],
)
def test_bad_recipe_options_fail_at_construction(options: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError):
        TorchCrossEncoder("some/model", **options)  # type: ignore[arg-type]


def test_recipe_names_and_architectures_pick_the_recipe() -> None:
    from rerank_core.local.recipes import choose_recipe

    def pick(model: str, *architectures: str) -> str | None:
        chosen = choose_recipe(
            model, architectures, recipe=None, prompt_template=None, true_token=None, false_token=None
        )
        return None if chosen is None else chosen.name

    assert pick("Qwen/Qwen3-Reranker-0.6B", "Qwen3ForCausalLM") == "qwen3-reranker"
    assert pick("/models/my-reranker", "Qwen3ForCausalLM") == "qwen3-reranker"
    assert pick("tomaarsen/Qwen3-Reranker-0.6B-seq-cls", "Qwen3ForSequenceClassification") == "qwen3-reranker"
    assert pick("mixedbread-ai/mxbai-rerank-base-v2", "Qwen2ForCausalLM") == "mxbai-rerank-v2"
    assert pick("mixedbread-ai/mxbai-rerank-base-v1", "DebertaV2ForSequenceClassification") is None
    assert pick("BAAI/bge-reranker-v2-gemma", "GemmaForCausalLM") == "bge-reranker-v2-gemma"
    assert pick("BAAI/bge-reranker-v2-m3", "XLMRobertaForSequenceClassification") is None
    assert pick("meta-llama/Llama-3.2-1B", "LlamaForCausalLM") is None


def test_gemma_and_mxbai_prompts_follow_their_cards(tiny_qwen3: str) -> None:
    from rerank_core.local.recipes import BGE_GEMMA_PROMPT, MXBAI_PREFIX, MXBAI_SUFFIX, MXBAI_TASK, RECIPES
    from rerank_core.local.recipes import encode_prompts as encode

    backend = TorchCrossEncoder(tiny_qwen3).backend_tokenizer

    def ids(text: str) -> list[int]:
        return list(backend.encode(text, add_special_tokens=False).ids)

    def build(recipe: str, instruction: str | None) -> list[int]:
        return encode(backend, RECIPES[recipe], "q one", ["d two"], instruction, 512, 7, lambda t, n: t[:n], 24)[0]

    # bge-reranker-v2-gemma card: BOS + "A: q" + sep + "B: passage" + sep + prompt, each tokenized alone.
    sep = ids("\n")
    expected = [7, *ids("A: q one"), *sep, *ids("B: d two"), *sep, *ids(BGE_GEMMA_PROMPT)]
    assert build("bge-reranker-v2-gemma", None) == expected
    # mxbai-rerank v2: prefix + "[instruction: i\n]query: q" + sep + "document: d" + sep + task + suffix.
    tail = [*ids("\n"), *ids(MXBAI_TASK), *ids(MXBAI_SUFFIX)]
    head = ids(MXBAI_PREFIX)
    assert build("mxbai-rerank-v2", None) == head + ids("query: q one") + ids("\n") + ids("document: d two") + tail
    assert (
        build("mxbai-rerank-v2", "be brief")
        == head + ids("instruction: be brief\nquery: q one") + ids("\n") + ids("document: d two") + tail
    )


def test_causal_rerankers_pick_half_precision_on_cuda() -> None:
    assert choose_dtype(None, "cuda", True, lambda: True) == "bfloat16"
    assert choose_dtype(None, "cuda", True, lambda: False) == "float16"
    assert choose_dtype(None, "cpu", True, lambda: True) == "float32"
    assert choose_dtype(None, "cuda", False, lambda: True) == "float32"
    assert choose_dtype("float32", "cuda", True, lambda: True) == "float32"


def test_the_prompt_counts_as_overhead_for_chunking(tiny_qwen3: str) -> None:
    reranker = TorchCrossEncoder(tiny_qwen3, max_length=MAX_LENGTH)
    overhead = reranker.special_tokens_per_pair
    (ids,) = reranker._encode(QUERY, ["Berlin is a big city in Germany."])["input_ids"]
    body = reranker.count_tokens(QUERY) + reranker.count_tokens("Berlin is a big city in Germany.")
    assert overhead > 100  # the tiny tokenizer spends ~150 tokens on the Qwen3 prompt
    assert abs(len(ids) - (overhead + body)) <= 2  # pieces tokenized apart may merge differently at the seams


def test_export_onnx_refuses_causal_lms_and_untrained_heads(tiny_qwen3: str, tmp_path: Path) -> None:
    from rerank_core.local.onnx_export import export

    with pytest.raises(ConfigurationError, match="causal language model"):
        export(tiny_qwen3, tmp_path / "out", int8=False, revision=None, opset=17)
    headless = copy_with_config(tiny_qwen3, tmp_path / "plain-qwen3", architectures=["Qwen3Model"])
    with pytest.raises(ConfigurationError, match="newly initialised"):
        export(headless, tmp_path / "out2", int8=False, revision=None, opset=17)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("instruction", [None, INSTRUCTION])
def test_the_shared_prompt_prefix_runs_once_per_batch_and_changes_no_score(
    tiny_qwen3: str, instruction: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rerank_core.base import sigmoid
    from rerank_core.local import torch_engine

    # One batch of rows of every length (the long document cut, the empty one), on one thread.
    reranker = TorchCrossEncoder(
        tiny_qwen3, max_length=MAX_LENGTH, device="cpu", max_batch_tokens=len(DOCS) * MAX_LENGTH, num_threads=1
    )
    network = reranker._load_network()
    shapes: list[tuple[int, int]] = []
    network.base_model.register_forward_pre_hook(
        lambda module, args, kwargs: shapes.append(tuple(kwargs["input_ids"].shape)), with_kwargs=True
    )
    reused, _ = reranker._logits(QUERY, DOCS, instruction)
    reused_shapes, shapes[:] = list(shapes), []
    monkeypatch.setattr(torch_engine, "MIN_SHARED_PREFIX", 10**6)  # every row runs its whole prompt
    whole, _ = reranker._logits(QUERY, DOCS, instruction)
    assert reused == pytest.approx(whole, abs=1e-4)
    assert ranking(reused) == ranking(whole)
    assert all(rows > 1 for rows, _ in shapes), "the comparison needs batches of several rows"
    assert len(reused_shapes) == 2 * len(shapes)  # per batch: the prefix once, then every row's own tokens
    assert [rows for rows, _ in reused_shapes[::2]] == [1] * len(shapes)
    assert sum(r * w for r, w in reused_shapes) < sum(r * w for r, w in shapes)
    assert card_scores(tiny_qwen3, QUERY, DOCS, instruction, MAX_LENGTH) == pytest.approx(
        [sigmoid(x) for x in reused], abs=1e-4
    )
