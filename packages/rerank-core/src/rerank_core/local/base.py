"""What both local engines (torch in `torch_engine.py`, ONNX Runtime in `onnx_engine.py`) share.

Options and their checks, tokenization with the model's Rust tokenizer (documents truncated, queries never),
length-sorted token-budgeted batches, activations, thread-safe lazy loading and typed load errors. An engine only
reads its tokenizer and model facts (`_read_tokenizer_setup`), loads its network (`_read_network`) and scores one
padded batch (`_forward`). Nothing here imports torch, transformers or onnxruntime.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from rerank_core import tracing
from rerank_core._checks import setting_int
from rerank_core.base import Normalize, Reranker, Scores, sigmoid
from rerank_core.errors import ConfigurationError, UnsupportedInputError
from rerank_core.local._hub import MODEL_ENV as MODEL_ENV
from rerank_core.local._hub import cache_only, looks_like_path, refuse_missing_folder
from rerank_core.models import Document, ScoreKind, Usage

if TYPE_CHECKING:
    import numpy as np

DEFAULT_MODEL = "cross-encoder/ms-marco-MiniLM-L-6-v2"
DEFAULT_BATCH_SIZE = 32
"""Most pairs in one batch."""
INT8_BATCH_SIZE = 4
"""Most pairs in one batch for int8 models: dynamic int8 scales activations once per batch, so a big batch of mixed
documents quantizes each of them more coarsely (measured in tests/local/test_quantize.py)."""
DEFAULT_MAX_BATCH_TOKENS = 1280
"""Most padded tokens in one batch (pairs x longest pair). Measured by benchmarks/local_speed.py: on CPU the best
batch holds a roughly constant number of tokens, not of pairs (about 4 pairs of 312 tokens, 8 of 160, 26 of 48)."""
MAX_LENGTH_CAP = 512
CHARS_PER_TOKEN = 24
"""A document is cut to `max_length * CHARS_PER_TOKEN` characters before tokenizing (English averages 4-5
characters per token), so a 10 MB document costs no more than a page. If the cut text is too short to fill the
window (runs of whitespace, huge unknown words), the bound doubles until it fills or the whole text is used: the
tokens scored are always exactly those of the full text."""
FEATURES = ("input_ids", "token_type_ids", "attention_mask")
"""The inputs a cross-encoder may take; all three come out of the tokenizer."""
TOKENIZER_FILES = (
    "tokenizer.json",
    "vocab.txt",
    "vocab.json",
    "sentencepiece.bpe.model",
    "spiece.model",
    "tokenizer.model",
)
"""Any one of these makes a folder's tokenizer real; without them transformers builds a specials-only vocabulary."""

Activation = Literal["auto", "sigmoid", "softmax", "none"]
Engine = Literal["auto", "torch", "onnx"]
ACTIVATIONS = ("auto", "sigmoid", "softmax", "none")
ENGINES = ("auto", "torch", "onnx")


def default_model() -> str:
    """The model `load_reranker("local")` uses: `$RERANK_LOCAL_MODEL` if set, else the MS MARCO MiniLM-L6."""
    return os.environ.get(MODEL_ENV) or DEFAULT_MODEL


is_path = looks_like_path


def local_folder(model: str) -> str | None:
    """The model's folder if `model` names an existing directory, else None (a hub id)."""
    folder = os.path.expanduser(model)
    return folder if os.path.isdir(folder) else None


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


def pad_batch(
    features: dict[str, list[list[int]]], batch: list[int], names: Sequence[str], pad_id: int, padding_side: str
) -> dict[str, np.ndarray]:
    """The batch's rows of each named feature, padded to its longest row only, as int64 arrays."""
    import numpy as np

    width = max(len(features["input_ids"][i]) for i in batch)
    arrays: dict[str, np.ndarray] = {}
    for name in names:
        array = np.full((len(batch), width), pad_id if name == "input_ids" else 0, dtype=np.int64)
        for row, index in enumerate(batch):
            values = features[name][index]
            if padding_side == "left":
                array[row, width - len(values) :] = values
            else:
                array[row, : len(values)] = values
        arrays[name] = array
    return arrays


def relevance(logits: np.ndarray, num_labels: int) -> list[float]:
    """One relevance logit per row: the single logit, or logit 1 - logit 0 (whose sigmoid is softmax of label 1)."""
    values = logits[:, 0] if num_labels == 1 else logits[:, 1] - logits[:, 0]
    return [float(x) for x in values]


@dataclass
class TokenizerSetup:
    """The tokenizer and what scoring needs to know about the model, loaded before the (heavier) weights."""

    tokenizer: Any
    """What `.tokenizer` shows users: the Hugging Face tokenizer (torch) or the `tokenizers.Tokenizer` (ONNX)."""
    backend: Any
    """A private `tokenizers.Tokenizer` copy without truncation or padding, used under the instance's lock."""
    max_length: int
    num_labels: int
    pad_id: int
    padding_side: str
    input_names: tuple[str, ...]
    prompt: Any = None
    """The LLM reranker's `PromptRecipe` (torch engine), or None for a plain cross-encoder."""
    causal: bool = False
    """Scored from the language-model head's logits of the recipe's tokens (else from a classification head)."""
    label_ids: tuple[int, ...] = ()
    """The recipe's true token id, then its false token id if it has one."""
    bos_id: int | None = None


def check_common_options(
    *,
    batch_size: object,
    max_batch_tokens: object,
    max_length: object,
    activation: object,
    num_threads: object,
    local_files_only: object,
    revision: object,
) -> None:
    """Reject bad settings shared by both engines at construction, before any (slow) loading."""
    setting_int("batch_size", batch_size, minimum=1, allow_none=True, provider="local")
    setting_int("max_batch_tokens", max_batch_tokens, minimum=1, allow_none=True, provider="local")
    setting_int("max_length", max_length, minimum=2, allow_none=True, provider="local")
    setting_int("num_threads", num_threads, minimum=1, allow_none=True, provider="local")
    if activation not in ACTIVATIONS:
        raise ConfigurationError(f"activation must be one of {ACTIVATIONS}, not {activation!r}", provider="local")
    if not isinstance(local_files_only, bool):
        raise ConfigurationError(f"local_files_only must be true or false, not {local_files_only!r}", provider="local")
    if revision is not None and not isinstance(revision, str):
        raise ConfigurationError(f"revision must be a string or None, not {revision!r}", provider="local")


def resolve_max_length(requested: int | None, model_limit: object) -> int:
    """The pair budget: the model's limit capped at 512, or what was asked if the model allows it."""
    limit = model_limit if isinstance(model_limit, int) and 0 < model_limit < 1_000_000 else MAX_LENGTH_CAP
    if requested is None:
        return min(MAX_LENGTH_CAP, limit)
    if requested > limit:
        raise ConfigurationError(
            f"max_length={requested} exceeds the model's limit of {limit} tokens",
            provider="local",
            hint=f"Use max_length <= {limit}",
        )
    return requested


def backend_copy(tokenizer_json: str) -> Any:
    """A private `tokenizers.Tokenizer` from its JSON, without truncation or padding (both are done here)."""
    from tokenizers import Tokenizer

    backend = Tokenizer.from_str(tokenizer_json)
    backend.no_truncation()
    backend.no_padding()
    return backend


def refuse_empty_vocabulary(backend: Any, model: str) -> None:
    """A vocabulary of special tokens only scores every text alike: refuse it instead of scoring garbage."""
    specials = {token.content for token in backend.get_added_tokens_decoder().values() if token.special}
    if backend.get_vocab_size(with_added_tokens=True) <= len(specials) + 1:
        raise ConfigurationError(
            f"model {model!r} has no real tokenizer (its vocabulary holds only special tokens)",
            provider="local",
            hint="The model folder needs its tokenizer files (tokenizer.json, or vocab.txt / sentencepiece model): "
            "copy them from the original model, or save the tokenizer with save_pretrained",
        )


def refuse_new_weights(model: str, info: dict[str, Any]) -> None:
    """A head transformers had to initialise at random scores noise: refuse the model instead."""
    missing = sorted(info.get("missing_keys") or ())
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise ConfigurationError(
            f"model {model!r} lacks trained weights for {shown}: they would be newly initialised and score noise",
            provider="local",
            hint="Use a reranker checkpoint (a sequence-classification cross-encoder, or an LLM reranker such as "
            "Qwen3-Reranker); a base language model or an embedding model is not one",
        )


def read_json(path: str | None) -> dict[str, Any]:
    """A JSON object file, or {} when there is no such file."""
    if path is None:
        return {}
    with open(path, encoding="utf-8") as handle:
        value = json.load(handle)
    if not isinstance(value, dict):
        raise ValueError(f"{os.path.basename(path)} is not a JSON object")
    return value


class CrossEncoderBase(Reranker):
    """A cross-encoder scored on this machine. Thread-safe; the model loads once, on first use or `warm_up()`.

    Scores are probabilities (sigmoid of the single logit, or softmax of label 1 for two-label models), or the
    raw relevance logit with `activation="none"`.
    """

    provider = "local"
    engine: ClassVar[str]
    install_hint: ClassVar[str]

    def __init__(
        self,
        model: str | None,
        *,
        batch_size: int | None,
        max_batch_tokens: int | None,
        max_length: int | None,
        activation: Activation,
        num_threads: int | None,
        local_files_only: bool,
        revision: str | None,
        normalize: Normalize | None,
        quantized: bool,
    ) -> None:
        check_common_options(
            batch_size=batch_size,
            max_batch_tokens=max_batch_tokens,
            max_length=max_length,
            activation=activation,
            num_threads=num_threads,
            local_files_only=local_files_only,
            revision=revision,
        )
        if model is not None and (not isinstance(model, str) or not model.strip()):
            raise ConfigurationError(f"model must be a hub id or a folder path, not {model!r}", provider="local")
        self.model_name: str = model or default_model()
        self.model = self.model_name
        self.batch_size = batch_size or (INT8_BATCH_SIZE if quantized else DEFAULT_BATCH_SIZE)
        self.max_batch_tokens = max_batch_tokens
        self.activation = activation
        self.num_threads = num_threads
        self.local_files_only = local_files_only
        self.revision = revision
        self.normalize = normalize
        self._requested_max_length = max_length
        self._lock = threading.Lock()
        self._tokenize_lock = threading.Lock()  # a tokenizer's truncation state is shared: one caller at a time
        self.instruction: str | None = None
        self._setup: TokenizerSetup | None = None
        self._network: Any = None
        self._cache_only = False

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(model={self.model_name!r}, engine={self.engine!r}, "
            f"batch_size={self.batch_size}, max_batch_tokens={self.max_batch_tokens})"
        )

    # -- public helpers ---------------------------------------------------------------------------------------

    @property
    def scoring_signature(self) -> str:
        settings = (self.revision, self.activation, self._requested_max_length, *self._signature_settings())
        # The default instruction only when set, so plain cross-encoders keep the keys they always had.
        told = () if self.instruction is None else ("instruction", self.instruction)
        return "\x00".join([super().scoring_signature, *map(str, settings), *told])

    def _signature_settings(self) -> tuple[object, ...]:
        """Engine settings that change scores (dtype, quantization, ONNX file): part of the cache key."""
        return ()

    def warm_up(self) -> None:
        """Load the tokenizer and the model now instead of on the first call."""
        self._load_network()

    @property
    def tokenizer(self) -> Any:
        """The model's tokenizer (loads it, but not the weights)."""
        return self._tokenizer_setup().tokenizer

    @property
    def backend_tokenizer(self) -> Any:
        """The model's Rust `tokenizers.Tokenizer` (shared: copy it before changing truncation or padding)."""
        return self._tokenizer_setup().backend

    @property
    def max_length(self) -> int:
        """Tokens per (query, document) pair, special tokens included; documents are truncated to fit."""
        return self._tokenizer_setup().max_length

    @property
    def special_tokens_per_pair(self) -> int:
        """Special tokens the model adds around a (query, document) pair, e.g. 3 for `[CLS] q [SEP] d [SEP]`; for an
        LLM reranker, every token of its prompt but the query and the document."""
        meta = self._tokenizer_setup()
        if meta.prompt is not None:  # an LLM reranker's prompt around an empty query and document
            return len(
                self._encode_prompts(replace(meta, max_length=1 << 20), "", [""], self.instruction)["input_ids"][0]
            )
        with self._tokenize_lock:
            return int(meta.backend.num_special_tokens_to_add(True))

    def count_tokens(self, text: str) -> int:
        """How many tokens `text` takes with this model's tokenizer, without special tokens."""
        backend = self._tokenizer_setup().backend
        with self._tokenize_lock:
            return len(backend.encode(text, add_special_tokens=False).ids)

    def predict_logits(self, query: str, texts: Sequence[str]) -> list[float]:
        """The raw relevance logit of each text, in input order (for two-label models: logit 1 - logit 0)."""
        return self._logits(query, list(texts), self.instruction)[0]

    def close(self) -> None:
        """Drop the model and tokenizer; the next call loads them again."""
        with self._lock:
            self._network = None
            self._setup = None

    # -- Reranker hooks ---------------------------------------------------------------------------------------

    def _score(self, query: str, documents: list[Document], top_n: int | None) -> Scores:
        return self._scored(query, documents, self.instruction)

    async def _ascore(self, query: str, documents: list[Document], top_n: int | None) -> Scores:
        import asyncio  # here, not at the top: a sync local program never needs the event loop machinery

        return await asyncio.to_thread(self._score, query, documents, top_n)

    @property
    def accepts_instruction(self) -> bool:
        """True for LLM rerankers (their prompt has a place for it); loads the tokenizer to find out."""
        return self._tokenizer_setup().prompt is not None

    def _score_instructed(self, query: str, documents: list[Document], top_n: int | None, instruction: str) -> Scores:
        return self._scored(query, documents, instruction)

    async def _ascore_instructed(
        self, query: str, documents: list[Document], top_n: int | None, instruction: str
    ) -> Scores:
        import asyncio

        return await asyncio.to_thread(self._scored, query, documents, instruction)

    def _scored(self, query: str, documents: list[Document], instruction: str | None) -> Scores:
        logits, tokens = self._logits(query, [doc.text for doc in documents], instruction)
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

    # -- inference --------------------------------------------------------------------------------------------

    def _logits(self, query: str, texts: list[str], instruction: str | None = None) -> tuple[list[float], int]:
        """Relevance logits in input order, and the number of tokens scored."""
        if not texts:
            return [], 0
        network = self._load_network()
        meta = self._tokenizer_setup()
        features = self._encode(query, texts, instruction)
        lengths = [len(ids) for ids in features["input_ids"]]
        scores = [0.0] * len(texts)
        batches = list(length_sorted_batches(lengths, self.batch_size, self.max_batch_tokens))

        def score(batch: list[int]) -> list[float]:
            with tracing.batch_span(self.provider, len(batch)):
                inputs = pad_batch(features, batch, meta.input_names, meta.pad_id, meta.padding_side)
                return self._forward(network, inputs, meta.num_labels)

        batch_scores = self._run_batches(tracing.in_this_context(score), batches)
        for batch, values in zip(batches, batch_scores, strict=True):
            for index, value in zip(batch, values, strict=True):
                scores[index] = value
        if not all(math.isfinite(x) for x in scores):
            raise ConfigurationError(
                "the model produced non-finite scores",
                provider=self.provider,
                hint="float16 can overflow on some models; try dtype='float32' or 'bfloat16'",
            )
        return scores, sum(lengths)

    def _encode(self, query: str, texts: list[str], instruction: str | None = None) -> dict[str, list[list[int]]]:
        """Tokenize every pair once, unpadded, truncating only the document (cut to a safe length first)."""
        meta = self._tokenizer_setup()
        backend = meta.backend
        if meta.prompt is not None:
            return self._encode_prompts(meta, query, texts, instruction)
        with self._tokenize_lock:
            query_tokens = len(backend.encode(query, add_special_tokens=False).ids)
            room = meta.max_length - query_tokens - backend.num_special_tokens_to_add(True)
            if room < 1:
                raise UnsupportedInputError(
                    f"the query is {query_tokens} tokens, which leaves no room for the document within "
                    f"max_length={meta.max_length}",
                    provider=self.provider,
                    hint="Shorten the query or raise max_length (documents are truncated, queries never are)",
                )
            backend.enable_truncation(meta.max_length, strategy="only_second")
            try:
                limit = meta.max_length * CHARS_PER_TOKEN
                encodings = backend.encode_batch([(query, cut(text, limit)) for text in texts])
                # A cut text that did not fill the window may have lost tokens: widen its cut until it fills.
                for i, text in enumerate(texts):
                    width = limit
                    while len(encodings[i].ids) < meta.max_length and len(text) > width:
                        width *= 2
                        encodings[i] = backend.encode(query, cut(text, width))
            finally:
                backend.no_truncation()
        return {
            "input_ids": [e.ids for e in encodings],
            "token_type_ids": [e.type_ids for e in encodings],
            "attention_mask": [e.attention_mask for e in encodings],
        }

    def _encode_prompts(
        self, meta: TokenizerSetup, query: str, texts: list[str], instruction: str | None
    ) -> dict[str, list[list[int]]]:
        """An LLM reranker's prompts, built by its recipe (see `recipes`)."""
        from rerank_core.local.recipes import encode_prompts

        with self._tokenize_lock:
            ids = encode_prompts(
                meta.backend,
                meta.prompt,
                query,
                texts,
                instruction,
                meta.max_length,
                meta.bos_id,
                cut,
                CHARS_PER_TOKEN,
            )
        return {"input_ids": ids, "attention_mask": [[1] * len(row) for row in ids]}

    def _forward(self, network: Any, inputs: dict[str, np.ndarray], num_labels: int) -> list[float]:
        """The relevance logit of each row of one padded batch."""
        raise NotImplementedError

    def _run_batches(
        self, score: Callable[[list[int]], list[float]], batches: list[list[int]]
    ) -> Iterable[list[float]]:
        """`score` over the batches, in order; an engine may run them side by side."""
        return map(score, batches)

    # -- loading ----------------------------------------------------------------------------------------------

    def _tokenizer_setup(self) -> TokenizerSetup:
        loaded = self._setup
        if loaded is None:
            with self._lock:
                if self._setup is None:
                    refuse_missing_folder(self.model_name)
                    self._cache_only = self._hub_unreachable()
                    with self.explain_load_errors():
                        setup = self._read_tokenizer_setup()
                    self._check_tokenizer_setup(setup)
                    self._setup = setup
                loaded = self._setup
        return loaded

    def _load_network(self) -> Any:
        network = self._network
        if network is None:
            setup = self._tokenizer_setup()
            with self._lock:
                if self._network is None:
                    with self.explain_load_errors():
                        self._network = self._read_network(setup)
                network = self._network
        return network

    def _read_tokenizer_setup(self) -> TokenizerSetup:
        raise NotImplementedError

    def _read_network(self, setup: TokenizerSetup) -> Any:
        raise NotImplementedError

    def _hub_unreachable(self) -> bool:
        """True if a hub id must come from the local cache alone; raises at once if it is not there either."""
        if self.local_files_only or local_folder(self.model_name) is not None:
            return False
        return cache_only(self.model_name, self.revision)

    @property
    def _local_only(self) -> bool:
        """What the hub libraries are told as `local_files_only`: asked for, or the hub cannot be reached."""
        return self.local_files_only or self._cache_only

    def _check_tokenizer_setup(self, setup: TokenizerSetup) -> None:
        refuse_empty_vocabulary(setup.backend, self.model_name)
        if setup.num_labels not in (1, 2):
            raise ConfigurationError(
                f"model {self.model_name!r} has {setup.num_labels} labels; a cross-encoder needs 1 logit or 2 labels",
                provider=self.provider,
            )
        if self.activation == "softmax" and setup.num_labels == 1:
            raise ConfigurationError(
                "activation='softmax' needs a two-label model; this one has a single logit",
                provider=self.provider,
                hint="Use activation='auto' or 'sigmoid'",
            )

    @contextmanager
    def explain_load_errors(self) -> Iterator[None]:
        """Turn every way loading fails (missing, offline, bad path, corrupt or truncated files, a bad config
        value) into one typed error, so callers and the fallback chain can move on."""
        try:
            yield
        except ConfigurationError:
            raise
        except Exception as exc:
            where = "a local directory or the local cache" if self.local_files_only else "disk or the Hugging Face hub"
            raise ConfigurationError(
                f"cannot load cross-encoder {self.model_name!r} ({self.engine} engine) from {where} "
                f"({type(exc).__name__}: {str(exc)[:500]})",
                provider=self.provider,
                hint=(
                    f"Pass a hub id or a local model directory (load_reranker('local:<path>')), or set {MODEL_ENV} "
                    "to a local directory. Offline, copy the model folder from a machine with internet. Check "
                    "local_files_only and revision, and that the files are complete (a truncated or corrupt "
                    "download fails here too)"
                ),
            ) from exc


def cut(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, at the last whitespace of the final half if there is one, so no
    word is split (the tokens before the cut are then exactly those of the full text)."""
    if len(text) <= limit:
        return text
    head = text[:limit]
    for index in range(limit - 1, limit // 2, -1):
        if head[index].isspace():
            return head[:index]
    return head
