"""The local engines: rerank on this machine, on PyTorch (`TorchCrossEncoder`, the `local` extra) or ONNX Runtime
(`OnnxCrossEncoder`, the `onnx` extra).

- `base`: what both engines share (options, tokenization, length-sorted batches, activations, lazy loading).
- `torch_engine`, `onnx_engine`: the two engines; `engines`: which one `load_reranker("local:...")` picks.
- `recipes`: the prompt recipes of LLM rerankers (Qwen3-Reranker, mxbai-rerank v2, bge-reranker-v2-gemma).
- `onnx_export`: writing a Hugging Face cross-encoder as a folder the ONNX engine loads (`rerank export-onnx`).

Importing this package imports no engine: torch, transformers and onnxruntime load with the first model.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rerank_core.local.base import CrossEncoderBase
    from rerank_core.local.engines import local_cross_encoder
    from rerank_core.local.onnx_engine import OnnxCrossEncoder
    from rerank_core.local.torch_engine import LocalCrossEncoder, TorchCrossEncoder

_HOMES = {
    "CrossEncoderBase": "base",
    "local_cross_encoder": "engines",
    "OnnxCrossEncoder": "onnx_engine",
    "TorchCrossEncoder": "torch_engine",
    "LocalCrossEncoder": "torch_engine",
}

__all__ = ["CrossEncoderBase", "LocalCrossEncoder", "OnnxCrossEncoder", "TorchCrossEncoder", "local_cross_encoder"]


def __getattr__(name: str) -> Any:
    module = _HOMES.get(name)
    if module is None:
        raise AttributeError(f"module 'rerank_core.local' has no attribute {name!r}")
    value = getattr(import_module(f"rerank_core.local.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
