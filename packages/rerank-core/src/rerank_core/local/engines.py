"""Pick the local engine for `load_reranker("local:<model>", options={"engine": ...})`.

`"auto"` (the default) uses ONNX Runtime when it is installed and either torch is not, or the model is a local
folder that has an ONNX export; everything else stays on torch (GPUs, torch-only settings such as `dtype`, hub ids
when both engines are installed: deciding those would need a network call). Both engines return the same
scores within 1e-4 on the same weights.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
from collections.abc import Mapping
from typing import Any

from rerank_core.errors import ConfigurationError
from rerank_core.local.base import ENGINES, CrossEncoderBase, default_model, local_folder

TORCH_ONLY = ("dtype", "trust_remote_code", "recipe", "prompt_template", "true_token", "false_token", "instruction")
"""Options only the torch engine has: asking for them picks it under `engine="auto"`."""


def torch_available() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in ("torch", "transformers"))


def choose_engine(model: str | None, options: Mapping[str, Any]) -> str:
    """The engine `engine="auto"` resolves to for this model and these options (see the module docstring)."""
    from rerank_core.local.onnx_engine import INT8_FILES, ONNX_FILES, onnxruntime_available

    device = options.get("device")
    if not onnxruntime_available() or any(name in options for name in TORCH_ONLY) or device not in (None, "cpu"):
        return "torch"
    if not torch_available():
        return "onnx"
    folder = local_folder(model or default_model())
    wanted = options.get("onnx_file")
    names = (wanted,) if isinstance(wanted, str) else INT8_FILES if options.get("quantize") else ONNX_FILES
    has_export = folder is not None and any(os.path.isfile(os.path.join(folder, name)) for name in names)
    return "onnx" if has_export else "torch"


def _refuse_torch_only_options(options: Mapping[str, Any]) -> None:
    """Options only the torch engine honours, on an install without it: say so now, and never suggest the ONNX
    engine (already installed, perhaps) for what it cannot do."""
    device = options.get("device")
    wanted = [f"device={device!r}"] if device not in (None, "cpu") else []
    wanted += [name for name in TORCH_ONLY if name in options]
    if not wanted:
        return
    gpu = (
        " with a CUDA build of torch (https://pytorch.org/get-started/locally/)"
        if wanted[0].startswith("device")
        else ""
    )
    raise ConfigurationError(
        f"{', '.join(wanted)} needs the torch engine, which is not installed (the ONNX engine runs on the CPU "
        "and takes none of these)",
        provider="local",
        hint=f'pip install "rerank-core[local]"{gpu}',
    )


def local_cross_encoder(model: str | None = None, **options: Any) -> CrossEncoderBase:
    """A local cross-encoder on the engine `options["engine"]` names ("auto" when absent); an option the engine
    does not take is a `ConfigurationError` naming the ones it does."""
    engine = options.pop("engine", "auto")
    if engine not in ENGINES:
        raise ConfigurationError(f"engine must be one of {ENGINES}, not {engine!r}", provider="local")
    if engine == "auto":
        engine = choose_engine(model, options)
    if engine == "torch" and not torch_available():
        _refuse_torch_only_options(options)
    cls: type[CrossEncoderBase]
    if engine == "onnx":
        from rerank_core.local.onnx_engine import OnnxCrossEncoder

        cls = OnnxCrossEncoder
    else:
        from rerank_core.local.torch_engine import TorchCrossEncoder

        cls = TorchCrossEncoder
    accepted = [name for name in inspect.signature(cls).parameters if name != "model"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ConfigurationError(
            f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} for the local "
            f"{engine} engine",
            provider="local",
            hint=f"The {engine} engine takes: engine, {', '.join(accepted)}",
        )
    return cls(model, **options)
