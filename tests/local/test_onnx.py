"""The ONNX Runtime engine: same scores and rankings as the torch engine, int8 agreement, no torch at run time."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rerank_core import OnnxCrossEncoder, RerankResponse, TorchCrossEncoder, load_reranker

QUERIES = ["what is the capital of france", "risk of cancer", "neural ranking"]
TEXTS = [
    "Paris is the capital of France, a city by the river Seine.",
    "Berlin is a big city in Germany.",
    "water and fire are two of the classical elements",
    "zebra xylophone",
    "",
    "cancer risk in patients with high blood pressure " * 3,
    "The capital of France is Paris. " * 40,  # longer than max_length 128: truncated the same way by both
    "deep neural network models for search ranking and retrieval of relevant text",
]


def ranking(scores: list[float]) -> list[int]:
    return sorted(range(len(scores)), key=lambda i: (-scores[i], i))


def by_index(response: RerankResponse) -> list[float]:
    return [score for _, score in sorted((r.index, r.relevance_score) for r in response.results)]


@pytest.mark.parametrize("query", QUERIES)
@pytest.mark.parametrize(("batch_size", "max_batch_tokens"), [(1, None), (4, None), (32, 1280)])
def test_scores_and_rankings_match_the_torch_engine(
    tiny_cross_encoder: str, tiny_onnx: str, query: str, batch_size: int, max_batch_tokens: int | None
) -> None:
    torch_engine = TorchCrossEncoder(tiny_cross_encoder, max_length=128, local_files_only=True)
    onnx_engine = OnnxCrossEncoder(tiny_onnx, max_length=128, batch_size=batch_size, max_batch_tokens=max_batch_tokens)
    want, got = torch_engine.rerank(query, TEXTS), onnx_engine.rerank(query, TEXTS)

    assert max(abs(a - b) for a, b in zip(by_index(got), by_index(want), strict=True)) < 1e-4
    assert [r.index for r in got.results] == [r.index for r in want.results] == ranking(by_index(want))
    assert got.usage == want.usage
    assert got.score_kind == "probability"
    assert (got.provider, got.model) == ("local", tiny_onnx)


def test_raw_logits_and_two_label_models_match_the_torch_engine(
    tiny_cross_encoder: str, tiny_onnx: str, tiny_cross_encoder_2label: str, tiny_onnx_2label: str
) -> None:
    query = QUERIES[0]
    want = TorchCrossEncoder(tiny_cross_encoder, activation="none").predict_logits(query, TEXTS)
    got = OnnxCrossEncoder(tiny_onnx, activation="none").predict_logits(query, TEXTS)
    assert got == pytest.approx(want, abs=1e-4)
    assert ranking(got) == ranking(want)

    for activation in ("auto", "softmax", "none"):
        torch_2 = TorchCrossEncoder(tiny_cross_encoder_2label, activation=activation).rerank(query, TEXTS)
        onnx_2 = OnnxCrossEncoder(tiny_onnx_2label, activation=activation).rerank(query, TEXTS)
        assert by_index(onnx_2) == pytest.approx(by_index(torch_2), abs=1e-4)
        assert [r.index for r in onnx_2.results] == [r.index for r in torch_2.results]


def test_int8_export_follows_fp32_closely(tiny_onnx: str) -> None:
    import onnx

    ops = {node.op_type for node in onnx.load(str(Path(tiny_onnx) / "onnx" / "model_int8.onnx")).graph.node}
    assert {"DynamicQuantizeLinear", "MatMulInteger"} & ops, "the int8 file really holds int8 matmuls"

    int8 = OnnxCrossEncoder(tiny_onnx, activation="none", quantize="int8")
    assert int8.batch_size == 4, "int8 keeps small batches: activations are scaled once per batch"
    assert_int8_follows_fp32(tiny_onnx)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_int8_follows_fp32_on_other_random_models(seed: int, tmp_path: Path) -> None:
    from tests.support.tiny_models import build_tiny_cross_encoder, export_tiny_onnx

    model = build_tiny_cross_encoder(tmp_path / "model", seed=seed)
    assert_int8_follows_fp32(export_tiny_onnx(model, tmp_path / "onnx"))


def assert_int8_follows_fp32(folder: str) -> None:
    """Bounds relative to each query's fp32 logit spread, so they hold whatever the CPU's int8 kernels are.

    With 8-bit weights, saturating u8*s8 sums (x86-64 without VNNI) moved these models' logits by 60-180% of their
    spread and swapped clearly separated documents. With 7-bit weights nothing saturates, the integer sums are the
    same on every CPU, and the quantization noise of these 32-wide models stays within a third of the spread.
    """
    fp32 = OnnxCrossEncoder(folder, activation="none")
    int8 = OnnxCrossEncoder(folder, activation="none", quantize="int8")
    for query in QUERIES:
        want, got = fp32.predict_logits(query, TEXTS), int8.predict_logits(query, TEXTS)
        assert got != want, "int8 really ran a different network"
        spread = max(want) - min(want)
        assert max(abs(a - b) for a, b in zip(got, want, strict=True)) < 0.4 * spread, query
        for i in range(len(TEXTS)):
            for j in range(len(TEXTS)):
                if want[i] - want[j] > 0.4 * spread:
                    assert got[i] > got[j], (query, i, j)


def test_onnx_file_selects_a_file_inside_the_model(tiny_onnx: str) -> None:
    chosen = OnnxCrossEncoder(tiny_onnx, onnx_file="onnx/model_int8.onnx", activation="none")
    assert chosen.batch_size == 4, "a quantized file name keeps int8 batching"
    assert chosen.predict_logits(QUERIES[0], TEXTS) == OnnxCrossEncoder(
        tiny_onnx, quantize="int8", activation="none"
    ).predict_logits(QUERIES[0], TEXTS)
    assert chosen.scoring_signature != OnnxCrossEncoder(tiny_onnx).scoring_signature, "cache keys tell them apart"


def test_a_top_level_model_onnx_is_found_too(tiny_onnx: str, tmp_path: Path) -> None:
    flat = tmp_path / "flat"
    shutil.copytree(tiny_onnx, flat)
    (flat / "onnx" / "model.onnx").rename(flat / "model.onnx")
    assert OnnxCrossEncoder(str(flat)).predict_logits("q", ["a b"]) == pytest.approx(
        OnnxCrossEncoder(tiny_onnx).predict_logits("q", ["a b"])
    )


def test_importing_rerank_core_and_scoring_with_onnx_never_imports_torch_or_transformers(tiny_onnx: str) -> None:
    code = f"""
import sys
import rerank_core
assert not {{"torch", "transformers"}} & set(sys.modules), "import rerank_core"
from rerank_core import load_reranker
reranker = load_reranker("local:{tiny_onnx}", options={{"engine": "auto"}})
assert type(reranker).__name__ == "OnnxCrossEncoder", type(reranker)
response = reranker.rerank("capital of france", ["Paris is the capital of France", "zebra"])
assert len(response.results) == 2 and reranker.count_tokens("the capital") == 2
assert "onnxruntime" in sys.modules
print(sorted({{"torch", "transformers", "sentence_transformers"}} & set(sys.modules)))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_hub_ids_load_through_the_hugging_face_cache(
    tiny_onnx: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hub id goes through `hf_hub_download`, the code users run; offline it resolves from the cache."""
    import huggingface_hub.constants

    commit = "0" * 40
    repo = tmp_path / "models--rerank-tests--tiny-onnx"
    shutil.copytree(tiny_onnx, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))

    from_hub = OnnxCrossEncoder("rerank-tests/tiny-onnx", local_files_only=True)
    assert from_hub.predict_logits("q", TEXTS) == OnnxCrossEncoder(tiny_onnx).predict_logits("q", TEXTS)
    with pytest.raises(Exception, match="no ONNX export") as caught:
        OnnxCrossEncoder("rerank-tests/tiny-onnx", onnx_file="onnx/other.onnx", local_files_only=True).warm_up()
    assert "export-onnx" in str(caught.value)


async def test_arerank_matches_rerank(tiny_onnx: str) -> None:
    reranker = OnnxCrossEncoder(tiny_onnx)
    assert await reranker.arerank(QUERIES[0], TEXTS, top_n=3) == reranker.rerank(QUERIES[0], TEXTS, top_n=3)


def test_num_threads_sets_the_session_threads(tiny_onnx: str) -> None:
    reranker = OnnxCrossEncoder(tiny_onnx, num_threads=1)
    reranker.warm_up()
    options = reranker._network.get_session_options()
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (1, 1)
    via_config = load_reranker(f"local:{tiny_onnx}", options={"engine": "onnx", "num_threads": 2})
    assert isinstance(via_config, OnnxCrossEncoder)
    assert via_config.num_threads == 2


def test_chunking_uses_the_onnx_tokenizer(tiny_cross_encoder: str, tiny_onnx: str) -> None:
    long_doc = "the capital of france is paris and the river is the seine. " * 80
    docs = [long_doc, "zebra xylophone", "water and fire"]
    settings: dict[str, Any] = {"long_documents": "chunk", "max_tokens_per_document": 64, "chunk_overlap": 8}
    onnx_chunked = load_reranker(f"local:{tiny_onnx}", engine="onnx", **settings)
    torch_chunked = load_reranker(f"local:{tiny_cross_encoder}", engine="torch", **settings)
    got, want = onnx_chunked.rerank(QUERIES[0], docs), torch_chunked.rerank(QUERIES[0], docs)
    assert [r.index for r in got.results] == [r.index for r in want.results]
    assert by_index(got) == pytest.approx(by_index(want), abs=1e-4)
    windows = [next(r.window for r in response.results if r.index == 0) for response in (got, want)]
    assert windows[0] is not None
    assert windows[0] == windows[1], "the same best window, cut by the same tokenizer"


def test_missing_pieces_are_configuration_errors_that_name_the_fix(tiny_onnx: str, tmp_path: Path) -> None:
    from rerank_core import ConfigurationError

    no_export = tmp_path / "no-export"
    shutil.copytree(tiny_onnx, no_export)
    shutil.rmtree(no_export / "onnx")
    with pytest.raises(ConfigurationError, match="no ONNX export") as caught:
        OnnxCrossEncoder(str(no_export)).rerank("q", ["d"])
    assert "rerank export-onnx" in str(caught.value)

    no_tokenizer = tmp_path / "no-tokenizer"
    shutil.copytree(tiny_onnx, no_tokenizer)
    (no_tokenizer / "tokenizer.json").unlink()
    with pytest.raises(ConfigurationError, match=r"no tokenizer\.json"):
        OnnxCrossEncoder(str(no_tokenizer)).rerank("q", ["d"])

    mislabelled = tmp_path / "mislabelled"
    shutil.copytree(tiny_onnx, mislabelled)
    config = json.loads((mislabelled / "config.json").read_text())
    config["id2label"] = {"0": "a", "1": "b"}
    (mislabelled / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigurationError, match="outputs 1 logits per pair"):
        OnnxCrossEncoder(str(mislabelled)).warm_up()
