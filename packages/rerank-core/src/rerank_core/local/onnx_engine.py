"""`OnnxCrossEncoder`: the same cross-encoder scoring on ONNX Runtime (the `onnx` extra), without torch.

It needs only `onnxruntime`, `tokenizers`, `numpy` and (for hub ids) `huggingface_hub`: a small install and a
cold start well under a second. It reads a model folder or hub repo that ships an ONNX export (`onnx/model.onnx`
or `model.onnx`, see `rerank export-onnx` to make one) and its `tokenizer.json`. Tokenization, batching,
truncation and activations are the torch engine's own code (`base.py`), so the scores agree with it.
"""

from __future__ import annotations

import importlib.util
import os
from typing import TYPE_CHECKING, Any

from rerank_core.base import Normalize
from rerank_core.errors import ConfigurationError
from rerank_core.local.base import (
    DEFAULT_MAX_BATCH_TOKENS,
    FEATURES,
    Activation,
    CrossEncoderBase,
    TokenizerSetup,
    backend_copy,
    local_folder,
    read_json,
    relevance,
    resolve_max_length,
)

if TYPE_CHECKING:
    import numpy as np

INSTALL_HINT = 'Install the ONNX engine: pip install "rerank-core[onnx]"'
ONNX_FILES = ("onnx/model.onnx", "model.onnx")
"""Where an fp32 export is looked for, in order (the layout sentence-transformers and Optimum use)."""
INT8_FILES = (
    "onnx/model_int8.onnx",
    "model_int8.onnx",
    "onnx/model_quantized.onnx",
    "onnx/model_qint8_avx512.onnx",
    "onnx/model_quint8_avx2.onnx",
)
"""Where a dynamic int8 export is looked for with `quantize="int8"`: `rerank export-onnx --int8` writes the first."""
DEVICES = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


class OnnxCrossEncoder(CrossEncoderBase):
    """A cross-encoder run locally with ONNX Runtime: the engine for CPU-only installs (no torch).
    Thread-safe; the model loads once, on first use or `warm_up()`.

    `onnx_file` picks a file inside the model folder or repo (e.g. `"onnx/model_qint8_avx512.onnx"`);
    `quantize="int8"` picks the int8 export (`onnx/model_int8.onnx`, as `rerank export-onnx --int8` writes it).
    """

    engine = "onnx"
    install_hint = INSTALL_HINT

    def __init__(
        self,
        model: str | None = None,
        *,
        onnx_file: str | None = None,
        quantize: str | None = None,
        device: str | None = None,
        batch_size: int | None = None,
        max_batch_tokens: int | None = DEFAULT_MAX_BATCH_TOKENS,
        max_length: int | None = None,
        activation: Activation = "auto",
        num_threads: int | None = None,
        local_files_only: bool = False,
        revision: str | None = None,
        normalize: Normalize | None = None,
    ) -> None:
        missing = [name for name in ("onnxruntime", "tokenizers", "numpy") if importlib.util.find_spec(name) is None]
        if missing:
            raise ConfigurationError(
                f"the ONNX engine needs {' and '.join(missing)}, which is not installed",
                provider=self.provider,
                hint=INSTALL_HINT,
            )
        if onnx_file is not None and (not isinstance(onnx_file, str) or not onnx_file.endswith(".onnx")):
            raise ConfigurationError(f"onnx_file must name a .onnx file, not {onnx_file!r}", provider="local")
        if quantize not in (None, "int8"):
            raise ConfigurationError(f"quantize must be 'int8' or None, not {quantize!r}", provider="local")
        if device is not None and device not in DEVICES:
            raise ConfigurationError(
                f"the ONNX engine runs on {' or '.join(DEVICES)}, not device={device!r}",
                provider="local",
                hint="For other devices use the torch engine (engine='torch')",
            )
        quantized = quantize == "int8" or (onnx_file is not None and is_quantized_name(onnx_file))
        super().__init__(
            model,
            batch_size=batch_size,
            max_batch_tokens=max_batch_tokens,
            max_length=max_length,
            activation=activation,
            num_threads=num_threads,
            local_files_only=local_files_only,
            revision=revision,
            normalize=normalize,
            quantized=quantized,
        )
        self.onnx_file = onnx_file
        self.quantize = quantize
        self.device = device
        self._output_name = ""

    def _signature_settings(self) -> tuple[object, ...]:
        return ("onnx", self.onnx_file, self.quantize)

    # -- engine hooks -----------------------------------------------------------------------------------------

    def _forward(self, network: Any, inputs: dict[str, np.ndarray], num_labels: int) -> list[float]:
        (logits,) = network.run([self._output_name], inputs)
        return relevance(logits, num_labels)

    def _read_tokenizer_setup(self) -> TokenizerSetup:
        tokenizer_path = self._file("tokenizer.json")
        if tokenizer_path is None:
            raise ConfigurationError(
                f"model {self.model_name!r} has no tokenizer.json, which the ONNX engine needs",
                provider=self.provider,
                hint="Export the model with `rerank export-onnx MODEL FOLDER`, which writes tokenizer.json, or "
                "save its tokenizer with transformers' save_pretrained",
            )
        with open(tokenizer_path, encoding="utf-8") as handle:
            backend = backend_copy(handle.read())
        config = read_json(self._file("config.json"))
        settings = read_json(self._file("tokenizer_config.json"))
        specials = read_json(self._file("special_tokens_map.json"))
        model_limit = settings.get("model_max_length")
        if not isinstance(model_limit, int) or not 0 < model_limit < 1_000_000:
            model_limit = config.get("max_position_embeddings")
        pad_token = token_text(settings.get("pad_token")) or token_text(specials.get("pad_token"))
        pad_id = backend.token_to_id(pad_token) if pad_token else None
        return TokenizerSetup(
            tokenizer=backend_copy(backend.to_str()),
            backend=backend,
            max_length=resolve_max_length(self._requested_max_length, model_limit),
            num_labels=config_labels(config),
            pad_id=pad_id if isinstance(pad_id, int) else 0,
            padding_side=str(settings.get("padding_side", "right")),
            input_names=FEATURES,  # narrowed to the network's own inputs when it loads
        )

    def _read_network(self, setup: TokenizerSetup) -> Any:
        import onnxruntime

        path = self._onnx_path()
        options = self._session_options()
        provider = DEVICES[self.device or "cpu"]
        if provider not in onnxruntime.get_available_providers():
            raise ConfigurationError(
                f"device={self.device!r} is not available to ONNX Runtime here ({provider} is missing)",
                provider=self.provider,
                hint="Install onnxruntime-gpu for CUDA, or use device='cpu'",
            )
        session = onnxruntime.InferenceSession(path, sess_options=options, providers=[provider])
        self._adopt_inputs(session, setup)
        return session

    def _session_options(self) -> Any:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.inter_op_num_threads = 1  # one graph branch at a time: the layers of an encoder are sequential
        if self.num_threads is not None:
            options.intra_op_num_threads = self.num_threads
        # Idle workers sleep instead of spin-waiting: a spinning worker takes a core from whatever else runs on
        # the machine, and sleeping costs nothing measurable when the machine is idle (benchmarks/local_threads.py;
        # figures in docs/benchmarks.md).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return options

    # -- files ------------------------------------------------------------------------------------------------

    def _adopt_inputs(self, session: Any, setup: TokenizerSetup) -> None:
        """Feed the network exactly the inputs it declares; check its output is one or two logits per pair."""
        names = tuple(node.name for node in session.get_inputs())
        unknown = [name for name in names if name not in FEATURES]
        if unknown or "input_ids" not in names:
            raise ConfigurationError(
                f"the ONNX model of {self.model_name!r} takes inputs {list(names)}; a cross-encoder takes "
                f"input_ids and some of {list(FEATURES[1:])}",
                provider=self.provider,
            )
        output = session.get_outputs()[0]
        width = output.shape[-1] if output.shape else None
        if isinstance(width, int) and width != setup.num_labels:
            raise ConfigurationError(
                f"the ONNX model of {self.model_name!r} outputs {width} logits per pair, but its config.json "
                f"says {setup.num_labels} labels",
                provider=self.provider,
                hint="Export the model again with `rerank export-onnx`",
            )
        setup.input_names = names
        self._output_name = output.name

    def _onnx_path(self) -> str:
        if self.onnx_file is not None:
            candidates: tuple[str, ...] = (self.onnx_file,)
        elif self.quantize == "int8":
            candidates = INT8_FILES
        else:
            candidates = ONNX_FILES
        for name in candidates:
            path = self._file(name)
            if path is not None:
                self._file(name + "_data")  # weights over 2 GB sit in a side file next to the graph
                return path
        raise ConfigurationError(
            f"model {self.model_name!r} has no ONNX export (looked for {', '.join(candidates)})",
            provider=self.provider,
            hint="Make one with `rerank export-onnx MODEL FOLDER` (needs torch at export time only) and load the "
            "folder, pass onnx_file='<path inside the model>', or use the torch engine (engine='torch')",
        )

    def _file(self, name: str) -> str | None:
        """The local path of `name` inside the model folder or hub repo, or None if the model has no such file.
        From the cache alone, a file missing from the cached snapshot is taken as absent (the loader checked
        first that the snapshot is there, so "not cached" cannot pass for "no such model")."""
        folder = local_folder(self.model_name)
        if folder is not None:
            path = os.path.join(folder, name)
            return path if os.path.isfile(path) else None
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError

        try:
            return hf_hub_download(self.model_name, name, revision=self.revision, local_files_only=self._local_only)
        except EntryNotFoundError:  # LocalEntryNotFoundError too: a file missing from a cached snapshot is absent
            return None


def is_quantized_name(name: str) -> bool:
    base = os.path.basename(name).lower()
    return any(mark in base for mark in ("int8", "quant", "qint", "quint"))


def config_labels(config: dict[str, Any]) -> int:
    """Labels as transformers counts them: id2label's size, else num_labels, else its default of 2."""
    id2label = config.get("id2label")
    if isinstance(id2label, dict) and id2label:
        return len(id2label)
    labels = config.get("num_labels", 2 if config else 1)
    if isinstance(labels, bool) or not isinstance(labels, int):
        raise ValueError(f"config.json has num_labels={labels!r}, not an int")
    return labels


def token_text(token: object) -> str | None:
    """A special token as tokenizer files store it: a string or an AddedToken-like dict."""
    if isinstance(token, str):
        return token
    if isinstance(token, dict) and isinstance(token.get("content"), str):
        return str(token["content"])
    return None


def onnxruntime_available() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "tokenizers", "numpy"))
