"""`rerank export-onnx MODEL FOLDER [--int8]` through `rerank_core.cli.export_onnx.main`."""

from __future__ import annotations

from pathlib import Path

import pytest

from rerank_core import OnnxCrossEncoder
from rerank_core.cli.export_onnx import main


def test_export_writes_a_folder_the_onnx_engine_loads(
    tiny_cross_encoder: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "exported"
    assert main([tiny_cross_encoder, str(out)]) == 0
    written = {str(path.relative_to(out)) for path in out.rglob("*") if path.is_file()}
    assert {"onnx/model.onnx", "config.json", "tokenizer.json", "tokenizer_config.json"} <= written
    assert "onnx/model_int8.onnx" not in written, "int8 only when asked"
    report = capsys.readouterr().out
    assert "max |Δlogit| vs torch" in report
    assert f"load_reranker('local:{out}', engine='onnx')" in report
    assert len(OnnxCrossEncoder(str(out)).rerank("capital", ["Paris", "zebra"]).results) == 2

    assert main([tiny_cross_encoder, str(out), "--int8"]) == 0, "exporting again into the folder is fine"
    assert (out / "onnx" / "model_int8.onnx").is_file()


def onnx_domains(path: Path) -> set[str]:
    import onnx

    return {node.domain or "ai.onnx" for node in onnx.load(str(path)).graph.node}


def op_types(path: Path) -> set[str]:
    import onnx

    return {node.op_type for node in onnx.load(str(path)).graph.node}


def test_the_export_is_fused_for_onnx_runtime_and_no_fuse_keeps_standard_operators(
    tiny_cross_encoder: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fused, plain = tmp_path / "fused", tmp_path / "plain"
    assert main([tiny_cross_encoder, str(fused), "--int8"]) == 0
    report = capsys.readouterr().out
    assert "for ONNX Runtime (" in report
    assert "Attention" in report
    assert {"Attention", "SkipLayerNormalization"} <= op_types(fused / "onnx" / "model.onnx")
    assert "com.microsoft" in onnx_domains(fused / "onnx" / "model_int8.onnx"), "int8 is quantized from the fused graph"

    assert main([tiny_cross_encoder, str(plain), "--no-fuse"]) == 0
    assert "for ONNX Runtime (" not in capsys.readouterr().out
    assert onnx_domains(plain / "onnx" / "model.onnx") == {"ai.onnx"}

    pairs = ["Paris is the capital of France", "zebra", "the capital city", ""]
    want = OnnxCrossEncoder(str(plain)).predict_logits("capital", pairs)
    got = OnnxCrossEncoder(str(fused)).predict_logits("capital", pairs)
    assert max(abs(a - b) for a, b in zip(got, want, strict=True)) < 1e-4


def test_a_model_the_optimizer_cannot_fuse_keeps_its_plain_graph(
    tiny_cross_encoder: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import onnxruntime.transformers.optimizer as optimizer

    def unknown_architecture(*args: object, **kwargs: object) -> None:
        raise ValueError("no fusion for this graph")

    monkeypatch.setattr(optimizer, "optimize_model", unknown_architecture)
    out = tmp_path / "exported"
    assert main([tiny_cross_encoder, str(out), "--int8"]) == 0
    assert "kept the graph unfused: ONNX Runtime's optimizer failed (ValueError" in capsys.readouterr().out
    assert onnx_domains(out / "onnx" / "model.onnx") == {"ai.onnx"}
    assert sorted(path.name for path in (out / "onnx").iterdir()) == ["model.onnx", "model_int8.onnx"]
    assert len(OnnxCrossEncoder(str(out), quantize="int8").rerank("capital", ["Paris", "zebra"]).results) == 2


def test_bad_arguments_and_missing_models_return_an_exit_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([]) == 2
    assert main(["--help"]) == 0
    assert "export-onnx" in capsys.readouterr().out
    assert main([str(tmp_path / "no-such-model"), str(tmp_path / "out")]) == 2, "a user error, as in docs/cli.md"
    error = capsys.readouterr().err
    assert error.startswith("rerank: error: "), error
    assert "no model directory at" in error
    assert not (tmp_path / "out").exists(), "nothing is written for a model that cannot load"
