"""Write a Hugging Face cross-encoder as a folder the ONNX engine loads (`rerank export-onnx`, in
`rerank_core.cli.export_onnx`).

The folder gets `onnx/model.onnx` (fp32, dynamic batch and sequence axes), with `int8` also
`onnx/model_int8.onnx` (ONNX Runtime dynamic int8: 7-bit int8 weights per channel, activations quantized per
batch), plus `config.json` and the tokenizer files. Both graphs are fused with ONNX Runtime's transformer optimizer
(Attention, SkipLayerNormalization, BiasGelu), unless `fuse=False` asks for standard ONNX operators only. Export
needs torch, transformers and onnx (`pip install "rerank-core[export]"`); scoring the folder afterwards needs only
`rerank-core[onnx]`. Each file written is checked against the torch model on sample pairs and the agreement is
printed.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rerank_core.errors import ConfigurationError
from rerank_core.local._hub import cache_only, refuse_missing_folder
from rerank_core.local.base import FEATURES, refuse_new_weights

FP32_FILE = "onnx/model.onnx"
INT8_FILE = "onnx/model_int8.onnx"
OPSET = 17
FP32_TOLERANCE = 1e-3
"""Largest logit difference from torch accepted for the fp32 export; real exports agree within about 1e-5."""
SAMPLE_PAIRS = [
    ("what is the capital of france", "Paris is the capital and largest city of France."),
    ("what is the capital of france", "Berlin is the capital of Germany."),
    ("how do vaccines work", "Vaccines train the immune system to recognise a pathogen without causing disease."),
    ("how do vaccines work", "The river flows through the city before it reaches the sea."),
    ("python sort a list", "Use sorted(items) for a new list or items.sort() to sort in place. " * 6),
    ("python sort a list", ""),
]
EXPORT_HINT = 'Export needs torch, transformers and onnx: pip install "rerank-core[export]"'


def export(
    model: str,
    folder: str | os.PathLike[str],
    *,
    int8: bool,
    revision: str | None,
    opset: int,
    fuse: bool = True,
) -> list[str]:
    """Export `model` into `folder`; return what was written and how closely each file follows torch."""
    try:
        import onnx  # noqa: F401  (the int8 quantizer and the exporter need it)
        import torch
        from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer
    except ImportError as exc:
        raise ConfigurationError(f"cannot export: {exc}", provider="local", hint=EXPORT_HINT) from exc

    target = Path(folder)
    refuse_missing_folder(model)
    local_only = not os.path.isdir(os.path.expanduser(model)) and cache_only(model, revision)
    try:
        tokenizer = AutoTokenizer.from_pretrained(model, revision=revision, local_files_only=local_only)
        # Eager attention traces to the pattern ONNX Runtime's optimizer fuses; the SDPA trace does not fuse and
        # scores slower (docs/benchmarks.md). The weights and the logits are the same.
        config = AutoConfig.from_pretrained(model, revision=revision, local_files_only=local_only)
        architectures = list(getattr(config, "architectures", None) or [])
        if any(name.endswith("ForCausalLM") for name in architectures):
            raise ConfigurationError(
                f"{model!r} is a causal language model ({', '.join(architectures)}); export-onnx exports "
                "cross-encoders, and LLM rerankers run on the torch engine",
                provider="local",
                hint=f'Use load_reranker("local:{model}") with the torch engine',
            )
        loaded: Any = AutoModelForSequenceClassification.from_pretrained(
            model, revision=revision, attn_implementation="eager", local_files_only=local_only, output_loading_info=True
        )
        network, info = loaded
        refuse_new_weights(model, info)
        network = network.eval()
    except ConfigurationError:
        raise
    except Exception as exc:  # a missing, offline or corrupt model: say so, whatever transformers raised
        raise ConfigurationError(
            f"cannot load {model!r} to export it ({type(exc).__name__}: {str(exc)[:300]})",
            provider="local",
            hint="Pass a hub id or a model folder with config.json, weights and tokenizer files",
        ) from exc
    if not getattr(tokenizer, "is_fast", False):
        raise ConfigurationError(
            f"{model!r} has no fast tokenizer, so no tokenizer.json for the ONNX engine", provider="local"
        )
    # The traced graph takes its inputs in the order of forward()'s parameters, whatever order kwargs come in.
    wanted = [name for name in tokenizer.model_input_names if name in FEATURES]
    names = [name for name in inspect.signature(network.forward).parameters if name in wanted]
    target.mkdir(parents=True, exist_ok=True)
    (target / "onnx").mkdir(exist_ok=True)
    tokenizer.save_pretrained(target)
    network.config.save_pretrained(target)

    def encode(pairs: list[tuple[str, str]]) -> dict[str, Any]:
        batch = tokenizer(
            [q for q, _ in pairs], [d for _, d in pairs], padding=True, truncation=True, return_tensors="pt"
        )
        return {name: batch[name] for name in names}

    # Trace on two short pairs, check on all of them: another batch size and length catch traced-in shapes.
    trace, inputs = encode(SAMPLE_PAIRS[:2]), encode(SAMPLE_PAIRS)
    with torch.inference_mode():
        want = network(**inputs).logits.float().numpy()
    fp32 = target / FP32_FILE
    with tempfile.TemporaryDirectory() as scratch:  # the exporter may write side files; keep only the model
        staged = Path(scratch) / "model.onnx"
        with warnings.catch_warnings():  # tracer chatter about Python-side shape checks, all constant here
            warnings.simplefilter("ignore")
            torch.onnx.export(
                network,
                (),
                str(staged),
                kwargs=trace,
                input_names=names,
                output_names=["logits"],
                dynamic_axes={**{name: {0: "batch", 1: "sequence"} for name in names}, "logits": {0: "batch"}},
                opset_version=opset,
                dynamo=False,  # the TorchScript exporter handles dynamic shapes of HF encoders without onnxscript
            )
        os.replace(staged, fp32)
    fp32_error = max_error(fp32, inputs, want)
    if fp32_error > FP32_TOLERANCE:
        raise ConfigurationError(
            f"the ONNX export of {model!r} differs from torch by {fp32_error:.2e} in logits",
            provider="local",
            hint="Try another --opset, or use the torch engine for this model",
        )
    report = [f"wrote {fp32} (max |Δlogit| vs torch on sample pairs: {fp32_error:.1e})"]
    if fuse:
        report.append(fuse_graph(fp32, network.config, inputs, want))
    if int8:
        int8_path = target / INT8_FILE
        quantize(fp32, int8_path)
        report.append(
            f"wrote {int8_path} (max |Δlogit| vs torch on sample pairs: {max_error(int8_path, inputs, want):.2e})"
        )
    report.append(f"load it with load_reranker('local:{target}', engine='onnx')")
    return report


def fuse_graph(path: Path, config: Any, inputs: dict[str, Any], want: Any) -> str:
    """Replace the fp32 graph at `path` by ONNX Runtime's fused one (Attention, SkipLayerNormalization, BiasGelu)
    if the optimizer fuses anything and the result still follows torch; say what happened either way."""
    staged = path.with_name(path.stem + ".fused.onnx")
    try:
        from onnxruntime.transformers.optimizer import optimize_model

        with quiet_logging():  # the optimizer logs every fusion pass, under module-level logger names
            optimized = optimize_model(
                str(path),
                model_type="bert",  # the optimizer's name for BERT-like encoders (RoBERTa, XLM-R, ELECTRA, ...)
                num_heads=int(getattr(config, "num_attention_heads", 0) or 0),
                hidden_size=int(getattr(config, "hidden_size", 0) or 0),
                opt_level=0,  # fusions only: the session applies ONNX Runtime's own graph optimizations at load
            )
        fused = {name: count for name, count in optimized.get_fused_operator_statistics().items() if count}
        if not fused:
            return "kept the graph unfused: ONNX Runtime's optimizer found nothing to fuse in this model"
        optimized.save_model_to_file(str(staged))
        error = max_error(staged, inputs, want)
    except Exception as exc:  # an architecture the optimizer does not know: the plain graph is still correct
        staged.unlink(missing_ok=True)
        return f"kept the graph unfused: ONNX Runtime's optimizer failed ({type(exc).__name__}: {str(exc)[:200]})"
    if error > FP32_TOLERANCE:
        staged.unlink()
        return f"kept the graph unfused: the fused one differs from torch by {error:.2e} in logits"
    os.replace(staged, path)
    summary = ", ".join(f"{count} {name}" for name, count in sorted(fused.items()))
    return f"fused {path} for ONNX Runtime ({summary}; max |Δlogit| vs torch: {error:.1e})"


def quantize(source: Path, destination: Path) -> None:
    """ONNX Runtime dynamic int8: 7-bit weights with one scale per output channel, activations per batch."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Fused operators come from ONNX Runtime's own domain, where shape inference gives no output types.
    extra = {"DefaultTensorType": onnx.TensorProto.FLOAT}
    with quiet_logging():  # it advises pre-processing on every call, fused graph or not
        quantize_dynamic(
            source,
            destination,
            weight_type=QuantType.QInt8,
            per_channel=True,
            # x86-64 CPUs without VNNI multiply u8 activations by s8 weights with an instruction that adds pairs
            # into int16 and saturates; 7-bit weights keep every pair sum in range, so one file scores alike on
            # AVX2-only and VNNI/AMX CPUs (ONNX Runtime's quantization guide names this remedy).
            reduce_range=True,
            extra_options=extra,
        )


@contextlib.contextmanager
def quiet_logging() -> Iterator[None]:
    """Drop log records below ERROR while the block runs (the export is a command; its report says what matters)."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)


def max_error(path: Path, inputs: dict[str, Any], want: Any) -> float:
    """Largest absolute logit difference between the ONNX file and the torch model on the sample pairs."""
    import numpy as np
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {name: tensor.numpy().astype(np.int64) for name, tensor in inputs.items()})
    return float(np.abs(got - want).max())
