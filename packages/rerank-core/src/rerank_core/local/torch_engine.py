"""`TorchCrossEncoder`: rerank on this machine with a Hugging Face cross-encoder and PyTorch (the `local` extra).

Scores equal sentence-transformers `CrossEncoder.predict` on the same weights; speed comes from tokenizing once,
sorting pairs by token length so batches carry almost no padding, and small batches (measured fastest on CPU,
see docs/benchmarks.md). torch and transformers are imported on first use, never at `import rerank_core`. What
this engine shares with the ONNX Runtime one (`onnx_engine.py`) lives in `base.py`.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import threading
import warnings
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Literal

from rerank_core.base import Normalize
from rerank_core.errors import ConfigurationError
from rerank_core.local._torch_workers import TorchBatchWorkers, openmp_backend
from rerank_core.local.base import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_BATCH_TOKENS,
    DEFAULT_MODEL,
    INT8_BATCH_SIZE,
    MODEL_ENV,
    TOKENIZER_FILES,
    Activation,
    CrossEncoderBase,
    TokenizerSetup,
    backend_copy,
    default_model,
    is_path,
    length_sorted_batches,
    local_folder,
    refuse_new_weights,
    relevance,
    resolve_max_length,
)
from rerank_core.local.recipes import RECIPE_NAMES, check_recipe_options, choose_recipe, token_id

if TYPE_CHECKING:
    import numpy as np
    import torch

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_MAX_BATCH_TOKENS",
    "DEFAULT_MODEL",
    "INT8_BATCH_SIZE",
    "MODEL_ENV",
    "LocalCrossEncoder",
    "TorchCrossEncoder",
    "default_model",
    "is_path",
    "length_sorted_batches",
]

INSTALL_HINT = (
    'Install the torch engine: pip install "rerank-core[local]" (on a CPU-only machine install torch from '
    "https://download.pytorch.org/whl/cpu first), or use the lighter ONNX engine: "
    'pip install "rerank-core[onnx]" and engine="onnx"'
)

Quantize = Literal["int8"]
DType = Literal["float32", "float16", "bfloat16"]
DTYPES = ("float32", "float16", "bfloat16")


class TorchCrossEncoder(CrossEncoderBase):
    """A cross-encoder run locally with PyTorch: the engine for GPUs and for exact sentence-transformers parity.
    Thread-safe; the model loads once, on first use or `warm_up()`. On CPU, unless `num_threads` is given, batches
    run side by side on single-threaded workers, one per torch thread (see `_torch_workers`).

    Scores are probabilities (sigmoid of the single logit, or softmax of label 1 for two-label models), or the
    raw relevance logit with `activation="none"`.
    """

    engine = "torch"
    install_hint = INSTALL_HINT

    def __init__(
        self,
        model: str | None = None,
        *,
        device: str | None = None,
        dtype: DType | None = None,
        batch_size: int | None = None,
        max_batch_tokens: int | None = DEFAULT_MAX_BATCH_TOKENS,
        max_length: int | None = None,
        activation: Activation = "auto",
        quantize: Quantize | None = None,
        num_threads: int | None = None,
        local_files_only: bool = False,
        trust_remote_code: bool = False,
        revision: str | None = None,
        normalize: Normalize | None = None,
        recipe: str | None = None,
        prompt_template: str | None = None,
        true_token: str | None = None,
        false_token: str | None = None,
        instruction: str | None = None,
    ) -> None:
        missing = [name for name in ("torch", "transformers") if importlib.util.find_spec(name) is None]
        if missing:
            raise ConfigurationError(
                f"the local reranker needs {' and '.join(missing)}, which is not installed",
                provider=self.provider,
                hint=INSTALL_HINT,
            )
        check_options(device, dtype, quantize)
        check_recipe_options(recipe, prompt_template, true_token, false_token, instruction)
        if not isinstance(trust_remote_code, bool):
            raise ConfigurationError(
                f"trust_remote_code must be true or false, not {trust_remote_code!r}", provider="local"
            )
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
            quantized=quantize == "int8",
        )
        self.device = device
        self.dtype = dtype
        self.quantize = quantize
        self.trust_remote_code = trust_remote_code
        self.recipe = recipe
        self.prompt_template = prompt_template
        self.true_token = true_token
        self.false_token = false_token
        self.instruction = instruction
        self._torch_device: torch.device | None = None
        self._workers: TorchBatchWorkers | None = None
        self._label_rows: torch.Tensor | None = None
        self._softcap: float | None = None

    def __repr__(self) -> str:
        return (
            f"TorchCrossEncoder(model={self.model_name!r}, device={self.device!r}, batch_size={self.batch_size}, "
            f"max_batch_tokens={self.max_batch_tokens})"
        )

    def _signature_settings(self) -> tuple[object, ...]:
        return (self.dtype, self.quantize, self.recipe, self.prompt_template, self.true_token, self.false_token)

    # -- engine hooks -----------------------------------------------------------------------------------------

    def _forward(self, network: Any, inputs: dict[str, np.ndarray], num_labels: int) -> list[float]:
        import torch

        tensors = {name: torch.from_numpy(array).to(self._torch_device) for name, array in inputs.items()}
        with torch.inference_mode():
            if self._label_rows is not None:
                return causal_relevance(network, tensors, self._label_rows, self._softcap)
            logits = network(**tensors).logits.float().cpu().numpy()
        return relevance(logits, num_labels)

    def _hub_options(self) -> dict[str, Any]:
        return {
            "local_files_only": self._local_only,
            "trust_remote_code": self.trust_remote_code,
            "revision": self.revision,
        }

    def _read_tokenizer_setup(self) -> TokenizerSetup:
        from transformers import AutoConfig, AutoTokenizer

        folder = local_folder(self.model_name)
        if folder is not None:
            refuse_folder_without_tokenizer(folder)
        config = AutoConfig.from_pretrained(self.model_name, **self._hub_options())
        tokenizer = AutoTokenizer.from_pretrained(self.model_name, **self._hub_options())
        if not getattr(tokenizer, "is_fast", False):
            raise ConfigurationError(
                f"model {self.model_name!r} has no fast tokenizer", provider=self.provider, hint="Install `tokenizers`"
            )
        model_limit = tokenizer.model_max_length
        if not 0 < model_limit < 1_000_000:  # transformers' huge sentinel means "unknown"
            model_limit = getattr(config, "max_position_embeddings", None)
        backend = backend_copy(tokenizer.backend_tokenizer.to_str())
        architectures = tuple(getattr(config, "architectures", None) or ())
        causal = any(name.endswith("ForCausalLM") for name in architectures)
        prompt = choose_recipe(
            self.model_name,
            architectures,
            recipe=self.recipe,
            prompt_template=self.prompt_template,
            true_token=self.true_token,
            false_token=self.false_token,
        )
        if causal and prompt is None:
            raise ConfigurationError(
                f"model {self.model_name!r} is a causal language model ({', '.join(architectures)}) with no known "
                "reranking recipe; scoring it as a cross-encoder would give random scores",
                provider=self.provider,
                hint=f"Pick its recipe with recipe= (one of {', '.join(RECIPE_NAMES)}), or give prompt_template "
                "(with {query} and {document}, and {instruction} if it takes one) plus true_token and false_token",
            )
        if prompt is None and self.instruction is not None:
            raise ConfigurationError(
                f"model {self.model_name!r} is a cross-encoder without a prompt, so it cannot follow an instruction",
                provider=self.provider,
                hint="Drop the instruction, or use an LLM reranker (Qwen3-Reranker, mxbai-rerank v2, ...)",
            )
        labels: tuple[int, ...] = ()
        if prompt is not None and causal:
            tokens = [prompt.true_token] + ([prompt.false_token] if prompt.false_token is not None else [])
            labels = tuple(token_id(backend, token, self.model_name) for token in tokens)
        pad_id = tokenizer.pad_token_id
        if pad_id is None and prompt is not None:
            pad_id = tokenizer.eos_token_id  # decoder tokenizers often have no pad token; masked anyway
        return TokenizerSetup(
            tokenizer=tokenizer,
            backend=backend,
            max_length=resolve_max_length(self._requested_max_length, model_limit),
            num_labels=1 if causal else int(config.num_labels),
            pad_id=pad_id or 0,
            # Decoders read the last position: left padding keeps it a real token in every row.
            padding_side="left" if prompt is not None else tokenizer.padding_side,
            input_names=("input_ids", "attention_mask") if prompt is not None else tuple(tokenizer.model_input_names),
            prompt=prompt,
            causal=causal,
            label_ids=labels,
            bos_id=tokenizer.bos_token_id,
        )

    def _read_network(self, setup: TokenizerSetup) -> Any:
        import torch
        from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

        device = resolve_device(self.device)
        if device.type == "cpu":
            check_cpu_dtype(self.dtype)
        if self.quantize == "int8" and device.type != "cpu":
            raise ConfigurationError("quantize='int8' is CPU-only", provider=self.provider, hint="Use device='cpu'")
        if self.num_threads is not None:
            torch.set_num_threads(self.num_threads)  # torch has one thread pool per process
        dtype = choose_dtype(self.dtype, device.type, setup.prompt is not None, cuda_bf16_supported)
        loader = AutoModelForCausalLM if setup.causal else AutoModelForSequenceClassification
        loaded: Any = loader.from_pretrained(self.model_name, output_loading_info=True, **self._hub_options())
        network, info = loaded
        refuse_new_weights(self.model_name, info)
        network = network.to(device=device, dtype=getattr(torch, dtype)).eval()
        if setup.prompt is not None and getattr(network.config, "pad_token_id", None) is None:
            network.config.pad_token_id = setup.pad_id  # decoder classifiers find each row's last token by it
        if setup.causal:
            self._label_rows = label_rows(network, setup.label_ids)
            cap = getattr(network.config, "final_logit_softcapping", None)
            self._softcap = float(cap) if isinstance(cap, (int, float)) and cap > 0 else None
        if self.quantize == "int8":
            network = quantize_int8(network)
        self._torch_device = device
        self._workers = self._start_workers(device)
        return network

    def _start_workers(self, device: torch.device) -> TorchBatchWorkers | None:
        """One single-threaded worker per torch thread on CPU, unless `num_threads` asks for torch's own threads."""
        import torch

        if device.type != "cpu" or self.num_threads is not None or not openmp_backend():
            return None
        threads = torch.get_num_threads()
        if threads < 2:
            return None
        try:
            return TorchBatchWorkers(threads)
        except threading.BrokenBarrierError:  # threads that cannot start: score on the caller's thread instead
            return None

    def _run_batches(
        self, score: Callable[[list[int]], list[float]], batches: list[list[int]]
    ) -> Iterable[list[float]]:
        workers = self._workers
        if workers is None or len(batches) < 2:
            return map(score, batches)  # one batch: torch's own threads split it
        if not workers.alive():  # a forked child: the parent's threads did not come along
            with self._lock:
                if self._workers is workers:
                    self._workers = TorchBatchWorkers(workers.count)
                workers = self._workers
            if workers is None:  # closed meanwhile
                return map(score, batches)
        return workers.map(score, batches)

    def close(self) -> None:
        """Drop the model, the tokenizer and the CPU workers; the next call loads them again."""
        with self._lock:
            workers, self._workers = self._workers, None
        if workers is not None and workers.alive():
            workers.close()
        super().close()


LocalCrossEncoder = TorchCrossEncoder
"""The torch engine's earlier name, kept for code that imports it."""


def label_rows(network: Any, label_ids: tuple[int, ...]) -> torch.Tensor:
    """The output-embedding rows of the recipe's tokens: the only logits an LLM reranker needs."""
    head = network.get_output_embeddings()
    rows: torch.Tensor = head.weight[list(label_ids)].detach()
    bias = getattr(head, "bias", None)
    if bias is not None:  # kept as an extra column so one matmul gives the logits
        import torch

        rows = torch.cat([rows, bias[list(label_ids)].detach().unsqueeze(1)], dim=1)
    return rows


def causal_relevance(
    network: Any, tensors: dict[str, torch.Tensor], rows: torch.Tensor, softcap: float | None
) -> list[float]:
    """logit(true) - logit(false) (or logit(true)) at the last position, from the decoder's last hidden state dotted
    with the tokens' rows: the full-vocabulary head at every position would cost more than the layers on small
    models."""
    import torch

    hidden = last_hidden_states(network, tensors["input_ids"], tensors["attention_mask"])
    if rows.shape[1] == hidden.shape[1] + 1:
        hidden = torch.cat([hidden, torch.ones_like(hidden[:, :1])], dim=1)
    logits = (hidden @ rows.T).float()
    if softcap is not None:
        logits = softcap * torch.tanh(logits / softcap)
    values = logits[:, 0] - logits[:, 1] if logits.shape[1] == 2 else logits[:, 0]
    return [float(x) for x in values.cpu()]


MIN_SHARED_PREFIX = 8
"""Shortest prompt prefix worth computing once per batch instead of once per row."""


def last_hidden_states(network: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The decoder's last hidden state at the last position of each left-padded row.

    The rows of one query share their prompt up to the document (the system prompt, the instruction, the query):
    that prefix runs once and its key/value cache serves every row, which then runs only its document and the
    suffix. Pads then sit between the prefix and the document, masked, and positions continue from the prefix
    without counting them, so every real token sees what it would in the whole prompt.
    """
    import torch

    lengths = attention_mask.sum(dim=1)
    rows, width = input_ids.shape
    shared = shared_prefix_length(input_ids, lengths)
    if rows < 2 or shared < MIN_SHARED_PREFIX:
        return _whole_prompt_states(network, input_ids, attention_mask)
    start = int(width - int(lengths[0]))  # row 0's first real token
    prefix = network.base_model(input_ids=input_ids[:1, start : start + shared], use_cache=True)
    cache: Any = getattr(prefix, "cache", None) or getattr(prefix, "past_key_values", None)
    if not hasattr(cache, "batch_repeat_interleave"):  # a transformers that hands back the legacy tuples
        return _whole_prompt_states(network, input_ids, attention_mask)
    cache.batch_repeat_interleave(rows)
    rest = int(lengths.max()) - shared
    tail_ids = input_ids[:, width - rest :]
    tail_mask = attention_mask[:, width - rest :].clone()
    # A row's real tokens past the prefix are its last `length - shared`; what precedes them here is padding or
    # prefix tokens already in the cache, both masked.
    keep = (lengths - shared).unsqueeze(1)
    tail_mask *= (torch.arange(rest, device=input_ids.device).unsqueeze(0) >= rest - keep).to(tail_mask.dtype)
    positions = (shared + tail_mask.cumsum(dim=1) - 1).clamp(min=shared)
    mask = torch.cat([torch.ones(rows, shared, dtype=attention_mask.dtype, device=input_ids.device), tail_mask], 1)
    output = network.base_model(
        input_ids=tail_ids,
        attention_mask=mask,
        position_ids=positions,
        use_cache=True,
        **{cache_argument(network): cache},
    )
    return output.last_hidden_state[:, -1, :]  # type: ignore[no-any-return]


def _whole_prompt_states(network: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    output = network.base_model(input_ids=input_ids, attention_mask=attention_mask)
    return output.last_hidden_state[:, -1, :]  # type: ignore[no-any-return]


def cache_argument(network: Any) -> str:
    """The decoder's name for a key/value cache passed in: `cache` from transformers 5.24, `past_key_values`
    before."""
    decoder: type = type(network.base_model)
    return _cache_argument_of(decoder)


@functools.cache  # read once per decoder class, not once per batch
def _cache_argument_of(decoder: type) -> str:
    parameters = inspect.signature(decoder.forward).parameters  # type: ignore[attr-defined]
    return "cache" if "cache" in parameters else "past_key_values"


def shared_prefix_length(input_ids: torch.Tensor, lengths: torch.Tensor) -> int:
    """How many leading real tokens all left-padded rows share, leaving each row at least one of its own."""
    width = input_ids.shape[1]
    shortest = int(lengths.min())
    first = input_ids[0, width - int(lengths[0]) :]
    shared = shortest - 1
    for row in range(1, input_ids.shape[0]):
        own = input_ids[row, width - int(lengths[row]) :]
        same = (own[:shared] == first[:shared]).long()
        shared = int(same.cumprod(dim=0).sum()) if shared else 0
    return shared


def cuda_bf16_supported() -> bool:
    import torch

    return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())


def choose_dtype(requested: str | None, device_type: str, llm: bool, bf16_supported: Callable[[], bool]) -> str:
    """The weights' dtype: the one asked for; else, for LLM rerankers (causal or `*-seq-cls`) on CUDA, bfloat16
    where the GPU has it and float16 elsewhere (their card precision; float32 would double memory for no ranking
    gain); else float32."""
    if requested is not None:
        return requested
    if llm and device_type == "cuda":
        return "bfloat16" if bf16_supported() else "float16"
    return "float32"


def refuse_folder_without_tokenizer(folder: str) -> None:
    """transformers builds a specials-only tokenizer for a folder with a config but no tokenizer files."""
    import os

    if not any(os.path.isfile(os.path.join(folder, name)) for name in TOKENIZER_FILES):
        raise ConfigurationError(
            f"model folder {folder!r} has no tokenizer files ({', '.join(TOKENIZER_FILES)})",
            provider="local",
            hint="Copy the tokenizer files from the original model into the folder, or save the tokenizer "
            "there with save_pretrained",
        )


def check_options(device: object, dtype: object, quantize: object) -> None:
    """Reject bad torch-engine settings at construction, before any (slow) model loading."""
    if device is not None and (not isinstance(device, str) or not device.strip()):
        raise ConfigurationError(f"device must be a string such as 'cpu' or 'cuda:0', not {device!r}", provider="local")
    if dtype is not None and dtype not in DTYPES:
        raise ConfigurationError(f"dtype must be one of {DTYPES} or None, not {dtype!r}", provider="local")
    if quantize not in (None, "int8"):
        raise ConfigurationError(f"quantize must be 'int8' or None, not {quantize!r}", provider="local")
    if quantize is not None and dtype not in (None, "float32"):
        raise ConfigurationError("quantize='int8' works on float32 weights only", provider="local")
    if isinstance(device, str) and device.split(":")[0] == "cpu" and dtype == "float16":
        raise ConfigurationError("dtype='float16' is GPU-only", provider="local", hint=CPU_DTYPE_HINT)


CPU_DTYPE_HINT = "On CPU use float32 (the default), or bfloat16 on CPUs with native bf16 (AVX512-BF16 / AMX)"


def resolve_device(device: str | None) -> torch.device:
    """The torch device to use; a device this machine does not have is a `ConfigurationError` now, not a raw
    error from deep inside torch on the first call."""
    import torch

    try:
        resolved = torch.device(device or auto_device())
    except (RuntimeError, ValueError) as exc:
        raise ConfigurationError(
            f"device={device!r} is not a torch device ({exc})",
            provider="local",
            hint="Use 'cpu', 'cuda', 'cuda:1', 'mps', or leave device unset to pick one automatically",
        ) from exc
    if resolved.type == "cuda":
        present = torch.cuda.is_available() and (resolved.index or 0) < torch.cuda.device_count()
    elif resolved.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        present = mps is not None and bool(mps.is_available())
    else:
        present = True
    if not present:
        raise ConfigurationError(
            f"device={device!r} is not available on this machine (torch {torch.__version__})",
            provider="local",
            hint="Leave device unset to pick the best available one, or use device='cpu'",
        )
    return resolved


def check_cpu_dtype(dtype: str | None) -> None:
    """float32 always; bfloat16 only where the CPU computes it natively (AMX, AVX512-BF16): emulated bf16 is
    several times slower than float32 (docs/local.md)."""
    if dtype == "float16" or (dtype == "bfloat16" and not cpu_has_native_bf16()):
        raise ConfigurationError(
            f"dtype={dtype!r} is not supported natively by this CPU and would be slower than float32",
            provider="local",
            hint=CPU_DTYPE_HINT,
        )


def cpu_has_native_bf16() -> bool:
    import torch

    probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)  # private API: absent means "don't know"
    return bool(probe is not None and probe())


def auto_device() -> str:
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def quantize_int8(network: Any) -> Any:
    """Dynamic int8 quantization of every Linear layer: int8 weights, activations quantized on the fly.

    Weights are scaled per output channel: on MiniLM-L6 that kept the top 10 intact where one scale per tensor
    swapped 3 of them, at the same speed (benchmarks/local_speed.py).
    """
    import torch
    from torch.ao import quantization

    with warnings.catch_warnings():
        # torch.ao.quantization is deprecated in favour of torchao, but it is the dependency-free way that works.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        return quantization.quantize_dynamic(  # type: ignore[no-untyped-call]
            network, {torch.nn.Linear: quantization.per_channel_dynamic_qconfig}, dtype=torch.qint8
        )
