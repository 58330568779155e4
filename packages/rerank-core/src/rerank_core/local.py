"""`LocalCrossEncoder`: rerank on this machine with a Hugging Face cross-encoder (the `local` extra).

Scores equal sentence-transformers `CrossEncoder.predict` on the same weights; speed comes from tokenizing once,
sorting pairs by token length so batches carry almost no padding, and small batches (measured fastest on CPU,
see docs/benchmarks.md). torch and transformers are imported on first use, never at `import rerank_core`.
"""

from __future__ import annotations

import asyncio
import importlib.util
import math
import os
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from rerank_core.base import Normalize, Reranker, Scores, sigmoid
from rerank_core.errors import ConfigurationError, InvalidInputError
from rerank_core.models import Document, ScoreKind, Usage

if TYPE_CHECKING:
    import torch

DEFAULT_MODEL = "cross-encoder/ms-marco-MiniLM-L-6-v2"
MODEL_ENV = "RERANK_LOCAL_MODEL"
DEFAULT_BATCH_SIZE = 32
"""Most pairs in one batch."""
INT8_BATCH_SIZE = 4
"""Most pairs in one batch with `quantize="int8"`: dynamic int8 scales activations once per batch, so a big batch
of mixed documents quantizes each of them more coarsely (measured in tests/local/test_quantize.py)."""
DEFAULT_MAX_BATCH_TOKENS = 1280
"""Most padded tokens in one batch (pairs x longest pair). Measured by benchmarks/local_speed.py: on CPU the best
batch holds a roughly constant number of tokens, not of pairs (about 4 pairs of 312 tokens, 8 of 160, 26 of 48)."""
MAX_LENGTH_CAP = 512
INSTALL_HINT = 'Install the local extra: pip install "rerank-core[local]"'

Activation = Literal["auto", "sigmoid", "softmax", "none"]
Quantize = Literal["int8"]
DType = Literal["float32", "float16", "bfloat16"]
ACTIVATIONS = ("auto", "sigmoid", "softmax", "none")
DTYPES = ("float32", "float16", "bfloat16")


def default_model() -> str:
    """The model `load_reranker("local")` uses: `$RERANK_LOCAL_MODEL` if set, else the MS MARCO MiniLM-L6."""
    return os.environ.get(MODEL_ENV) or DEFAULT_MODEL


def length_sorted_batches(
    lengths: Sequence[int], batch_size: int, max_batch_tokens: int | None = None
) -> list[list[int]]:
    """Group indices into batches of similar length (longest first), so padding is nearly zero.

    A batch holds at most `batch_size` pairs and, if set, at most `max_batch_tokens` padded tokens (its pairs
    times its longest pair), so batches of short pairs grow and batches of long ones shrink; never below one.
    """
    batches: list[list[int]] = []
    for index in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        last = batches[-1] if batches else None
        if (
            last is not None
            and len(last) < batch_size
            # last[0] is the batch's longest pair, so this is the padded size after adding one more.
            and (max_batch_tokens is None or (len(last) + 1) * lengths[last[0]] <= max_batch_tokens)
        ):
            last.append(index)
        else:
            batches.append([index])
    return batches


@dataclass
class _Tokenizer:
    """The tokenizer plus what scoring needs to know about the model, loaded before the (heavier) weights."""

    tokenizer: Any
    max_length: int
    num_labels: int
    pad_values: dict[str, int]


class LocalCrossEncoder(Reranker):
    """A cross-encoder run locally with PyTorch. Thread-safe; the model loads once, on first use or `warm_up()`.

    Scores are probabilities (sigmoid of the single logit, or softmax of label 1 for two-label models), or the
    raw relevance logit with `activation="none"`.
    """

    provider = "local"

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
        local_files_only: bool = False,
        trust_remote_code: bool = False,
        revision: str | None = None,
        normalize: Normalize | None = None,
    ) -> None:
        missing = [name for name in ("torch", "transformers") if importlib.util.find_spec(name) is None]
        if missing:
            raise ConfigurationError(
                f"the local reranker needs {' and '.join(missing)}, which is not installed",
                provider=self.provider,
                hint=INSTALL_HINT,
            )
        check_options(device, dtype, batch_size, max_length, activation, quantize)
        if max_batch_tokens is not None and (
            isinstance(max_batch_tokens, bool) or not isinstance(max_batch_tokens, int) or max_batch_tokens < 1
        ):
            raise ConfigurationError(
                f"max_batch_tokens must be a positive int or None, not {max_batch_tokens!r}", provider="local"
            )
        self.model_name: str = model or default_model()
        self.model = self.model_name
        self.device = device
        self.dtype = dtype
        self.batch_size = batch_size or (INT8_BATCH_SIZE if quantize == "int8" else DEFAULT_BATCH_SIZE)
        self.max_batch_tokens = max_batch_tokens
        self.activation = activation
        self.quantize = quantize
        self.local_files_only = local_files_only
        self.trust_remote_code = trust_remote_code
        self.revision = revision
        self.normalize = normalize
        self._requested_max_length = max_length
        self._lock = threading.Lock()
        self._tokenize_lock = threading.Lock()  # fast tokenizers are not safe to call from several threads
        self._tokenizer: _Tokenizer | None = None
        self._network: Any = None
        self._torch_device: torch.device | None = None

    def __repr__(self) -> str:
        return (
            f"LocalCrossEncoder(model={self.model_name!r}, device={self.device!r}, batch_size={self.batch_size}, "
            f"max_batch_tokens={self.max_batch_tokens})"
        )

    # -- public helpers ---------------------------------------------------------------------------------------

    @property
    def scoring_signature(self) -> str:
        settings = (self.revision, self.activation, self._requested_max_length, self.dtype, self.quantize)
        return "\x00".join([super().scoring_signature, *map(str, settings)])

    def warm_up(self) -> None:
        """Load the tokenizer and the model now instead of on the first call."""
        self._load_network()

    @property
    def tokenizer(self) -> Any:
        """The model's Hugging Face tokenizer (loads it, but not the weights)."""
        return self._load_tokenizer().tokenizer

    @property
    def max_length(self) -> int:
        """Tokens per (query, document) pair, special tokens included; documents are truncated to fit."""
        return self._load_tokenizer().max_length

    def count_tokens(self, text: str) -> int:
        """How many tokens `text` takes with this model's tokenizer, without special tokens."""
        tokenizer = self._load_tokenizer().tokenizer
        with self._tokenize_lock:
            return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    def predict_logits(self, query: str, texts: Sequence[str]) -> list[float]:
        """The raw relevance logit of each text, in input order (for two-label models: logit 1 - logit 0)."""
        return self._logits(query, list(texts))[0]

    def close(self) -> None:
        """Drop the model and tokenizer; the next call loads them again."""
        with self._lock:
            self._network = None
            self._tokenizer = None

    # -- Reranker hooks ---------------------------------------------------------------------------------------

    def _score(self, query: str, documents: list[Document], top_n: int | None) -> Scores:
        logits, tokens = self._logits(query, [doc.text for doc in documents])
        kind: ScoreKind
        if self.activation == "none":
            scores, kind = logits, "logit"
        else:
            scores, kind = [sigmoid(x) for x in logits], "probability"
        return Scores(
            scores=dict(enumerate(scores)),
            provider=self.provider,
            model=self.model,
            score_kind=kind,
            usage=Usage(prompt_tokens=tokens, total_tokens=tokens),
        )

    async def _ascore(self, query: str, documents: list[Document], top_n: int | None) -> Scores:
        return await asyncio.to_thread(self._score, query, documents, top_n)

    # -- inference --------------------------------------------------------------------------------------------

    def _logits(self, query: str, texts: list[str]) -> tuple[list[float], int]:
        """Relevance logits in input order, and the number of tokens scored."""
        import torch

        if not texts:
            return [], 0
        features = self._encode(query, texts)
        network, device, meta = self._load_network(), self._torch_device, self._load_tokenizer()
        lengths = [len(ids) for ids in features["input_ids"]]
        relevance = [0.0] * len(texts)
        with torch.inference_mode():
            for batch in length_sorted_batches(lengths, self.batch_size, self.max_batch_tokens):
                inputs = pad_batch(features, batch, meta.pad_values, meta.tokenizer.padding_side, device)
                out = network(**inputs).logits.float()
                logit = out[:, 0] if meta.num_labels == 1 else out[:, 1] - out[:, 0]
                for index, value in zip(batch, logit.tolist(), strict=True):
                    relevance[index] = value
        if not all(math.isfinite(x) for x in relevance):
            raise ConfigurationError(
                "the model produced non-finite scores",
                provider=self.provider,
                hint="float16 can overflow on some models; try dtype='float32' or 'bfloat16'",
            )
        return relevance, sum(lengths)

    def _encode(self, query: str, texts: list[str]) -> dict[str, list[list[int]]]:
        """Tokenize every pair once, unpadded, truncating only the document."""
        meta = self._load_tokenizer()
        tokenizer = meta.tokenizer
        with self._tokenize_lock:
            query_tokens = len(tokenizer(query, add_special_tokens=False)["input_ids"])
            room = meta.max_length - query_tokens - tokenizer.num_special_tokens_to_add(pair=True)
            if room < 1:
                raise InvalidInputError(
                    f"the query is {query_tokens} tokens, which leaves no room for the document within "
                    f"max_length={meta.max_length}",
                    provider=self.provider,
                    hint="Shorten the query or raise max_length (documents are truncated, queries never are)",
                )
            encoded = tokenizer(
                [query] * len(texts), texts, truncation="only_second", max_length=meta.max_length, padding=False
            )
        return {key: encoded[key] for key in meta.pad_values}

    # -- loading ----------------------------------------------------------------------------------------------

    def _load_tokenizer(self) -> _Tokenizer:
        loaded = self._tokenizer
        if loaded is None:
            with self._lock:
                if self._tokenizer is None:
                    self._tokenizer = self._read_tokenizer()
                loaded = self._tokenizer
        return loaded

    def _load_network(self) -> Any:
        network = self._network
        if network is None:
            self._load_tokenizer()
            with self._lock:
                if self._network is None:
                    self._network = self._read_network()
                network = self._network
        return network

    def _hub_options(self) -> dict[str, Any]:
        return {
            "local_files_only": self.local_files_only,
            "trust_remote_code": self.trust_remote_code,
            "revision": self.revision,
        }

    def _read_tokenizer(self) -> _Tokenizer:
        from transformers import AutoConfig, AutoTokenizer

        if is_path(self.model_name) and not os.path.isdir(os.path.expanduser(self.model_name)):
            # Fail at once: asking the hub for a path only spends its retries (about 20 s offline).
            raise ConfigurationError(
                f"no model directory at {self.model_name!r}",
                provider=self.provider,
                hint=f"Check the path (and {MODEL_ENV}); a hub id looks like 'org/name'",
            )
        with self._explain_load_errors():
            config = AutoConfig.from_pretrained(self.model_name, **self._hub_options())
            tokenizer = AutoTokenizer.from_pretrained(self.model_name, **self._hub_options())
        num_labels = int(config.num_labels)
        if num_labels not in (1, 2):
            raise ConfigurationError(
                f"model {self.model_name!r} has {num_labels} labels; a cross-encoder needs 1 logit or 2 labels",
                provider=self.provider,
            )
        if self.activation == "softmax" and num_labels == 1:
            raise ConfigurationError(
                "activation='softmax' needs a two-label model; this one has a single logit",
                provider=self.provider,
                hint="Use activation='auto' or 'sigmoid'",
            )
        if not getattr(tokenizer, "is_fast", False):
            raise ConfigurationError(
                f"model {self.model_name!r} has no fast tokenizer", provider=self.provider, hint="Install `tokenizers`"
            )
        return _Tokenizer(
            tokenizer=tokenizer,
            max_length=self._resolve_max_length(tokenizer, config),
            num_labels=num_labels,
            pad_values={
                name: tokenizer.pad_token_id if name == "input_ids" else 0 for name in tokenizer.model_input_names
            },
        )

    def _resolve_max_length(self, tokenizer: Any, config: Any) -> int:
        model_limit = tokenizer.model_max_length
        if not 0 < model_limit < 1_000_000:  # transformers' huge sentinel means "unknown"
            model_limit = getattr(config, "max_position_embeddings", MAX_LENGTH_CAP)
        requested = self._requested_max_length
        if requested is None:
            return int(min(MAX_LENGTH_CAP, model_limit))
        if requested > model_limit:
            raise ConfigurationError(
                f"max_length={requested} exceeds the model's limit of {model_limit} tokens",
                provider=self.provider,
                hint=f"Use max_length <= {model_limit}",
            )
        return requested

    def _read_network(self) -> Any:
        import torch
        from transformers import AutoModelForSequenceClassification

        device = torch.device(self.device or auto_device())
        if device.type == "cpu":
            check_cpu_dtype(self.dtype)
        if self.quantize == "int8" and device.type != "cpu":
            raise ConfigurationError("quantize='int8' is CPU-only", provider=self.provider, hint="Use device='cpu'")
        with self._explain_load_errors():
            network = AutoModelForSequenceClassification.from_pretrained(self.model_name, **self._hub_options())
        network = network.to(device=device, dtype=getattr(torch, self.dtype or "float32")).eval()
        if self.quantize == "int8":
            network = quantize_int8(network)
        self._torch_device = device
        return network

    @contextmanager
    def _explain_load_errors(self) -> Iterator[None]:
        """Turn the many ways `from_pretrained` fails (missing, offline, bad path) into one actionable error."""
        try:
            yield
        except (OSError, ValueError, ImportError) as exc:
            where = "a local directory or the local cache" if self.local_files_only else "disk or the Hugging Face hub"
            raise ConfigurationError(
                f"cannot load cross-encoder {self.model_name!r} from {where} ({type(exc).__name__}: {exc})",
                provider=self.provider,
                hint=(
                    f"Pass a hub id or a local model directory (load_reranker('local:<path>')), or set {MODEL_ENV} "
                    "to a local directory. Offline, copy the model folder from a machine with internet. Check "
                    "local_files_only and revision"
                ),
            ) from exc


def check_options(
    device: str | None,
    dtype: str | None,
    batch_size: object,
    max_length: object,
    activation: str,
    quantize: str | None,
) -> None:
    """Reject bad settings at construction, before any (slow) model loading."""
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise ConfigurationError(f"batch_size must be a positive int or None, not {batch_size!r}", provider="local")
    if max_length is not None and (isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 2):
        raise ConfigurationError(f"max_length must be an int >= 2 or None, not {max_length!r}", provider="local")
    if activation not in ACTIVATIONS:
        raise ConfigurationError(f"activation must be one of {ACTIVATIONS}, not {activation!r}", provider="local")
    if dtype is not None and dtype not in DTYPES:
        raise ConfigurationError(f"dtype must be one of {DTYPES} or None, not {dtype!r}", provider="local")
    if quantize not in (None, "int8"):
        raise ConfigurationError(f"quantize must be 'int8' or None, not {quantize!r}", provider="local")
    if quantize is not None and dtype not in (None, "float32"):
        raise ConfigurationError("quantize='int8' works on float32 weights only", provider="local")
    if device is not None and device.split(":")[0] == "cpu" and dtype == "float16":
        raise ConfigurationError("dtype='float16' is GPU-only", provider="local", hint=CPU_DTYPE_HINT)


CPU_DTYPE_HINT = "On CPU use float32 (the default), or bfloat16 on CPUs with native bf16 (AVX512-BF16 / AMX)"


def is_path(model: str) -> bool:
    """True for a value that can only be a filesystem path, never a hub id (which looks like `org/name`)."""
    return model.startswith(("/", "./", "../", "~")) or os.path.isabs(model)


def check_cpu_dtype(dtype: str | None) -> None:
    """float32 always; bfloat16 only where the CPU computes it natively, since emulated bf16 is several times
    slower than float32 (6× slower on an AVX2-only Zen 3; 2.5-2.8× faster than float32 on an AMX Xeon)."""
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


def pad_batch(
    features: dict[str, list[list[int]]],
    batch: list[int],
    pad_values: dict[str, int],
    padding_side: str,
    device: torch.device | None,
) -> dict[str, torch.Tensor]:
    """Pad the batch's rows to its longest row only, and move them to the model's device."""
    import torch

    width = max(len(features["input_ids"][i]) for i in batch)
    tensors: dict[str, torch.Tensor] = {}
    for name, pad in pad_values.items():
        rows = []
        for i in batch:
            row = features[name][i]
            fill = [pad] * (width - len(row))
            rows.append(fill + row if padding_side == "left" else row + fill)
        tensors[name] = torch.tensor(rows, dtype=torch.long, device=device)
    return tensors
