"""Model selection, lazy and thread-safe loading, clear configuration errors."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from rerank_core import ConfigurationError, TorchCrossEncoder, load_reranker
from rerank_core.local.torch_engine import DEFAULT_MODEL


def test_importing_rerank_core_does_not_import_torch() -> None:
    code = "import sys, rerank_core; rerank_core.TorchCrossEncoder; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_missing_torch_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # makes torch look uninstalled
    with pytest.raises(ConfigurationError, match=r'pip install "rerank-core\[local\]"') as caught:
        TorchCrossEncoder("any")
    assert "torch" in str(caught.value)


def test_default_model_and_env_override(monkeypatch: pytest.MonkeyPatch, tiny_cross_encoder: str) -> None:
    monkeypatch.delenv("RERANK_LOCAL_MODEL", raising=False)
    assert TorchCrossEncoder().model_name == DEFAULT_MODEL == "cross-encoder/ms-marco-MiniLM-L-6-v2"

    monkeypatch.setenv("RERANK_LOCAL_MODEL", tiny_cross_encoder)
    reranker = load_reranker("local")
    assert isinstance(reranker, TorchCrossEncoder)
    assert reranker.model_name == tiny_cross_encoder
    assert reranker.rerank("capital of france", ["Paris", "zebra"]).model == tiny_cross_encoder
    assert TorchCrossEncoder("explicit/model").model_name == "explicit/model", "an explicit model beats the env"


@pytest.mark.parametrize("local_files_only", [True, False])
def test_missing_hub_model_is_a_clear_configuration_error(local_files_only: bool) -> None:
    model = "rerank-tests/no-such-model"
    reranker = TorchCrossEncoder(model, local_files_only=local_files_only)
    with pytest.raises(ConfigurationError) as caught:
        reranker.rerank("q", ["d"])
    message = str(caught.value)
    assert model in message
    assert caught.value.provider == "local"
    assert "RERANK_LOCAL_MODEL" in message
    # Asked for the cache alone, the error names that setting; offline (HF_HUB_OFFLINE=1 here), the variable.
    assert ("local_files_only" if local_files_only else "HF_HUB_OFFLINE is set") in message
    assert "local cache" in message


def test_a_missing_model_path_fails_at_once_without_asking_the_hub(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import transformers

    def hub_lookup(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a filesystem path must not be looked up on the hub")

    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", hub_lookup)
    for model in ("./no-such-model", "/nowhere/model", "~/no-such-model", str(tmp_path / "no-such-model")):
        with pytest.raises(ConfigurationError, match="no model directory at") as caught:
            TorchCrossEncoder(model).rerank("q", ["d"])
        assert "RERANK_LOCAL_MODEL" in str(caught.value)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"batch_size": 0}, "batch_size"),
        ({"max_length": 1}, "max_length"),
        ({"activation": "tanh"}, "activation"),
        ({"dtype": "int4"}, "dtype"),
        ({"quantize": "int4"}, "quantize"),
        ({"quantize": "int8", "dtype": "float16"}, "float32"),
        ({"device": "cpu", "dtype": "float16"}, "GPU-only"),
    ],
)
def test_bad_options_fail_at_construction(options: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        TorchCrossEncoder("m", **options)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_on_a_cpu_without_native_support_is_rejected(
    tiny_cross_encoder: str, monkeypatch: pytest.MonkeyPatch, dtype: str
) -> None:
    monkeypatch.setattr("rerank_core.local.torch_engine.auto_device", lambda: "cpu")
    monkeypatch.setattr("rerank_core.local.torch_engine.cpu_has_native_bf16", lambda: False)
    with pytest.raises(ConfigurationError, match="slower than float32") as caught:
        TorchCrossEncoder(tiny_cross_encoder, dtype=dtype, local_files_only=True).warm_up()  # type: ignore[arg-type]
    assert "float32" in str(caught.value)


def test_bfloat16_runs_on_a_cpu_with_native_bf16(tiny_cross_encoder: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr("rerank_core.local.torch_engine.cpu_has_native_bf16", lambda: True)
    query, docs = "capital of france", ["Paris is the capital of France", "zebra xylophone", "water and fire"]
    bf16 = TorchCrossEncoder(tiny_cross_encoder, device="cpu", dtype="bfloat16", local_files_only=True)
    fp32 = TorchCrossEncoder(tiny_cross_encoder, device="cpu", local_files_only=True)
    got, want = bf16.predict_logits(query, docs), fp32.predict_logits(query, docs)
    assert next(bf16._network.parameters()).dtype == torch.bfloat16
    assert got == pytest.approx(want, abs=0.1)
    assert got != want


def test_loads_lazily_once_and_warm_up_loads_eagerly(tiny_cross_encoder: str) -> None:
    reranker = TorchCrossEncoder(tiny_cross_encoder, local_files_only=True)
    assert reranker._network is None
    reranker.warm_up()
    network = reranker._network
    assert network is not None
    reranker.rerank("q", ["a", "b"])
    assert reranker._network is network
    reranker.close()
    assert reranker._network is None
    assert len(reranker.rerank("q", ["a", "b"]).results) == 2, "usable again after close()"


def test_hub_options_reach_every_from_pretrained_call(tiny_cross_encoder: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import transformers

    seen: list[tuple[str, dict[str, Any]]] = []
    for name in ("AutoConfig", "AutoTokenizer", "AutoModelForSequenceClassification"):
        cls = getattr(transformers, name)
        real = cls.from_pretrained

        def spy(path: str, *, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
            seen.append((_name, kwargs))
            return _real(path, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", spy)

    defaults: dict[str, Any] = {"local_files_only": False, "trust_remote_code": False, "revision": None}
    chosen: dict[str, Any] = {"local_files_only": True, "revision": "main"}
    for given, expected in (({}, defaults), (chosen, {**defaults, **chosen})):
        seen.clear()
        TorchCrossEncoder(tiny_cross_encoder, **given).warm_up()
        # transformers also loads the config from inside the other two calls, with the same options.
        assert {name for name, _ in seen} == {"AutoConfig", "AutoTokenizer", "AutoModelForSequenceClassification"}
        for _, kwargs in seen:
            assert {key: kwargs.get(key) for key in expected} == expected


def test_num_threads_sets_torch_threads_when_the_model_loads(tiny_cross_encoder: str) -> None:
    import torch

    before = torch.get_num_threads()
    wanted = 2 if before == 1 else 1
    try:
        reranker = load_reranker(f"local:{tiny_cross_encoder}", options={"engine": "torch", "num_threads": wanted})
        assert isinstance(reranker, TorchCrossEncoder)
        assert torch.get_num_threads() == before, "nothing changes before the model loads"
        reranker.warm_up()
        assert torch.get_num_threads() == wanted
    finally:
        torch.set_num_threads(before)
