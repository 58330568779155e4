"""`rerank export-onnx MODEL FOLDER [--int8]` through `rerank_core.onnx_export.main`."""

from __future__ import annotations

from pathlib import Path

import pytest

from rerank_core import OnnxCrossEncoder
from rerank_core.onnx_export import main


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


def test_bad_arguments_and_missing_models_return_an_exit_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([]) == 2
    assert main(["--help"]) == 0
    assert "export-onnx" in capsys.readouterr().out
    assert main([str(tmp_path / "no-such-model"), str(tmp_path / "out")]) == 1
    assert "cannot load" in capsys.readouterr().err
    assert not (tmp_path / "out").exists(), "nothing is written for a model that cannot load"
