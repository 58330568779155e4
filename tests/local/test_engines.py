"""Choosing the local engine: `engine` = "torch", "onnx" or "auto", and options each engine takes."""

from __future__ import annotations

import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from rerank_core import ConfigurationError, OnnxCrossEncoder, RerankResponse, TorchCrossEncoder, load_reranker
from rerank_core.local.engines import choose_engine


def test_engine_option_picks_the_engine(tiny_cross_encoder: str, tiny_onnx: str) -> None:
    assert isinstance(load_reranker(f"local:{tiny_onnx}", options={"engine": "onnx"}), OnnxCrossEncoder)
    assert isinstance(load_reranker(f"local:{tiny_cross_encoder}", options={"engine": "torch"}), TorchCrossEncoder)
    assert isinstance(
        load_reranker({"provider": "local", "model": tiny_onnx, "options": {"engine": "onnx"}}), OnnxCrossEncoder
    )
    assert isinstance(load_reranker(f"local:{tiny_onnx}", engine="torch"), TorchCrossEncoder)


def test_auto_uses_onnx_for_a_folder_with_an_export_and_torch_otherwise(
    tiny_cross_encoder: str, tiny_onnx: str
) -> None:
    assert isinstance(load_reranker(f"local:{tiny_onnx}"), OnnxCrossEncoder)
    assert isinstance(load_reranker(f"local:{tiny_cross_encoder}"), TorchCrossEncoder), "no ONNX file: torch"
    assert choose_engine(tiny_onnx, {"quantize": "int8"}) == "onnx", "the int8 export is there too"
    assert choose_engine(tiny_onnx, {"dtype": "bfloat16"}) == "torch", "a torch-only option keeps torch"
    assert choose_engine(tiny_onnx, {"device": "cuda"}) == "torch", "GPUs stay on torch"
    assert choose_engine(tiny_onnx, {"onnx_file": "onnx/missing.onnx"}) == "torch"
    assert choose_engine("org/model", {}) == "torch", "a hub id with both engines installed: no network to decide"


def test_auto_uses_onnx_when_torch_is_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RERANK_LOCAL_MODEL", raising=False)
    monkeypatch.setattr("rerank_core.local.engines.torch_available", lambda: False)
    assert choose_engine("cross-encoder/ms-marco-MiniLM-L-6-v2", {}) == "onnx"
    assert isinstance(load_reranker("local"), OnnxCrossEncoder), "the default model, the CPU-only default engine"


def test_auto_uses_torch_when_onnxruntime_is_not_installed(tiny_onnx: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("rerank_core.local.onnx_engine.onnxruntime_available", lambda: False)
    assert choose_engine(tiny_onnx, {}) == "torch"


def test_missing_onnxruntime_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes onnxruntime look uninstalled
    with pytest.raises(ConfigurationError, match=r'pip install "rerank-core\[onnx\]"'):
        OnnxCrossEncoder("any")


@pytest.mark.parametrize("engine", ["torch", "onnx"])
def test_an_unknown_option_is_a_configuration_error_naming_the_known_ones(tiny_onnx: str, engine: str) -> None:
    with pytest.raises(ConfigurationError, match="unknown option 'batchsize'") as caught:
        load_reranker(f"local:{tiny_onnx}", options={"engine": engine, "batchsize": 4})
    assert "batch_size" in str(caught.value)
    assert "num_threads" in str(caught.value)


def test_an_option_of_the_other_engine_is_refused(tiny_onnx: str) -> None:
    with pytest.raises(ConfigurationError, match="unknown option 'dtype' for the local onnx engine"):
        load_reranker(f"local:{tiny_onnx}", options={"engine": "onnx", "dtype": "float32"})
    with pytest.raises(ConfigurationError, match="unknown option 'onnx_file' for the local torch engine"):
        load_reranker(f"local:{tiny_onnx}", options={"engine": "torch", "onnx_file": "onnx/model.onnx"})


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"engine": "tensorrt"}, "engine must be one of"),
        ({"engine": "onnx", "num_threads": 0}, "num_threads"),
        ({"engine": "torch", "num_threads": "2"}, "num_threads"),
        ({"engine": "onnx", "max_length": "512"}, "max_length"),
        ({"engine": "onnx", "local_files_only": "yes"}, "local_files_only"),
        ({"engine": "torch", "trust_remote_code": "no"}, "trust_remote_code"),
        ({"engine": "onnx", "quantize": "int4"}, "quantize"),
        ({"engine": "onnx", "device": "mps"}, "ONNX engine runs on"),
        ({"engine": "onnx", "onnx_file": "model.bin"}, "onnx_file"),
        ({"engine": "torch", "device": 0}, "device must be a string"),
        ({"engine": "onnx", "activation": "Sigmoid"}, "activation"),
    ],
)
def test_mistyped_values_fail_at_construction(tiny_onnx: str, options: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        load_reranker(f"local:{tiny_onnx}", options=options)


def test_the_onnx_engine_refuses_cuda_without_its_execution_provider(
    tiny_onnx: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("onnxruntime.get_available_providers", lambda: ["CPUExecutionProvider"])  # the CPU build
    with pytest.raises(ConfigurationError, match="not available to ONNX Runtime"):
        OnnxCrossEncoder(tiny_onnx, device="cuda").warm_up()


def test_the_same_model_folder_serves_both_engines(tiny_cross_encoder: str, tiny_onnx: str, tmp_path: Path) -> None:
    both = tmp_path / "both"
    shutil.copytree(tiny_cross_encoder, both)
    shutil.copytree(Path(tiny_onnx) / "onnx", both / "onnx")
    texts = ["Paris is the capital of France", "zebra xylophone", "water and fire"]
    onnx_engine, torch_engine = (load_reranker(f"local:{both}", engine=e) for e in ("onnx", "torch"))
    assert isinstance(onnx_engine, OnnxCrossEncoder)
    assert isinstance(torch_engine, TorchCrossEncoder)
    assert onnx_engine.predict_logits("capital", texts) == pytest.approx(
        torch_engine.predict_logits("capital", texts), abs=1e-4
    )


def test_cuda_on_an_install_without_torch_recommends_the_torch_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from haystack.utils import ComponentDevice

    from haystack_integrations.components.rankers.rerank import RerankRanker
    from rerank_core.local import engines

    monkeypatch.setattr(engines, "torch_available", lambda: False)  # an `[onnx]`-only install
    ranker = RerankRanker(reranker="local", device=ComponentDevice.from_str("cuda:0"))
    with pytest.raises(ConfigurationError, match="needs the torch engine") as caught:
        ranker.warm_up()
    assert "rerank-core[local]" in (caught.value.hint or "")
    assert "[onnx]" not in str(caught.value)
    assert "cuda" in str(caught.value)


Engine = type[TorchCrossEncoder] | type[OnnxCrossEncoder]


@pytest.fixture(params=["torch", "onnx"])
def engine(request: pytest.FixtureRequest, tiny_cross_encoder: str, tiny_onnx: str) -> tuple[Engine, str]:
    """Each local engine with a tiny model folder it loads."""
    if request.param == "torch":
        return TorchCrossEncoder, tiny_cross_encoder
    return OnnxCrossEncoder, tiny_onnx


def test_threads_share_one_lazy_load_and_get_identical_results(
    engine: tuple[Engine, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cls, folder = engine
    loads: list[int] = []
    read_network = cls._read_network

    def counting(self: Any, text: Any) -> Any:
        loads.append(threading.get_ident())
        return read_network(self, text)

    monkeypatch.setattr(cls, "_read_network", counting)
    reranker = cls(folder, batch_size=2, local_files_only=True)
    assert reranker.count_tokens("the capital") == 2
    assert loads == [], "counting tokens loads the tokenizer only"
    docs = [f"paris capital city {i} " * (i % 5 + 1) for i in range(12)]
    start = threading.Barrier(8)

    def call(_: int) -> RerankResponse:
        start.wait()
        response: RerankResponse = reranker.rerank("capital of france", docs)
        return response

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(call, range(8)))
    assert len(loads) == 1
    assert all(response == responses[0] for response in responses)
    assert responses[0] == cls(folder, batch_size=2, local_files_only=True).rerank("capital of france", docs)
    reranker.close()
    reranker.warm_up()
    assert len(loads) == 3, "close() drops the model; warm_up() loads it again (the fresh instance loaded once)"
