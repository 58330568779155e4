"""Tiny cross-encoders built inside the test session: nothing is downloaded.

Each is a 2-layer BERT sequence classifier with deterministic weights and a real WordPiece tokenizer (a small
vocabulary of common English words plus single characters, so any ASCII text tokenizes without `[UNK]` floods),
saved with `save_pretrained` so it loads exactly like a hub model through `AutoTokenizer` /
`AutoModelForSequenceClassification` and through sentence-transformers `CrossEncoder`.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS_TEXT = """
the of and to in is was for on that with as by it at from this be are an or which not have has had were
but their its they also can more one all been may than other new into two used most some such first only
these when after over between time many during about would who there each under if then so no any where how
what why we you he she his her them our your very well much both through because while against within without
cell cells gene genes protein proteins disease patients risk cancer study studies treatment effect effects
clinical blood brain human mouse mice dna rna virus infection immune response expression level levels high low
increase increased decrease reduced rate rates data model models result results method methods analysis
search engine query document documents rank ranking rerank reranker relevance relevant score scores answer
question information retrieval text language neural network networks learning machine deep vector index
python code library framework pipeline server client request response error fast slow speed memory
paris france city capital river tower europe country people world history war year years century
water energy heat light sun moon earth planet star space air fire food plant plants animal animals
"""


def write_vocab(path: Path) -> Path:
    """A WordPiece vocab: specials, words, and every printable character as a word start and a continuation."""
    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    tokens = SPECIAL_TOKENS + list(dict.fromkeys(WORDS_TEXT.split())) + chars + [f"##{c}" for c in chars]
    vocab = path / "vocab.txt"
    vocab.write_text("\n".join(tokens) + "\n", encoding="utf-8")
    return vocab


def build_tiny_cross_encoder(path: str | Path, num_labels: int = 1, seed: int = 0) -> str:
    """Build and save a tiny BERT cross-encoder with `num_labels` outputs into `path`; return the path as str."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    vocab_size = len(write_vocab(directory).read_text(encoding="utf-8").split())
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        # The usual 0.02 init scores every document almost alike; 0.3 spreads logits over a few units, so
        # rankings and activations are clearly distinguishable without saturating the sigmoid.
        initializer_range=0.3,
    )
    config.num_labels = num_labels
    torch.manual_seed(seed)
    BertForSequenceClassification(config).save_pretrained(directory)
    # With config.json in place, AutoTokenizer builds the fast WordPiece tokenizer from vocab.txt on any
    # transformers version, and saving writes tokenizer.json next to it.
    tokenizer = AutoTokenizer.from_pretrained(directory, do_lower_case=True, model_max_length=512)
    tokenizer.save_pretrained(directory)
    return str(directory)


def export_tiny_onnx(source: str, path: str | Path, int8: bool = True) -> str:
    """Export a tiny cross-encoder with the real `rerank export-onnx` code (fp32, and int8 unless told not to)."""
    from rerank_core.cli.export_onnx import main

    argv = [source, str(path), *(["--int8"] if int8 else [])]
    if main(argv) != 0:
        raise RuntimeError(f"export-onnx {argv} failed")
    return str(path)


QWEN3_CHAT_TEMPLATE = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct "
    'provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n'
    "<Instruct>: {% set system = messages | selectattr('role', 'eq', 'system') | list %}{{ system[0].content if system"
    " else 'Given a web search query, retrieve relevant passages that answer the query' }}"
    "\n<Query>: {{ (messages | selectattr('role', 'eq', 'query') | first).content }}"
    "\n<Document>: {{ (messages | selectattr('role', 'eq', 'document') | first).content }}"
    # As an expression: Jinja drops a template's final literal newline.
    "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>{{ '\\n\\n' }}"
)
"""The Qwen3-Reranker prompt as a chat template over sentence-transformers' query/document roles (an instruction
comes in as the system message), so sentence-transformers' `CrossEncoder` can score the tiny model independently."""
CHAT_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<bos>"]


def build_byte_level_tokenizer(path: Path) -> int:
    """A byte-level BPE tokenizer (the kind Qwen uses) trained on a small word list, with the chat special tokens and
    "yes" / "no" / "Yes" / "0" / "1" as single tokens; saved as `tokenizer.json`. Returns the vocabulary size."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    corpus = [WORDS_TEXT, "yes no Yes No 0 1\nyes\nno\nYes\n", "<Instruct>: <Query>: <Document>: Judge whether"] * 4
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=CHAT_SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    for token in ("yes", "no", "Yes", "0", "1"):
        if tokenizer.token_to_id(token) is None:
            raise RuntimeError(f"tiny tokenizer lacks {token!r}")
    tokenizer.save(str(path / "tokenizer.json"))
    return int(tokenizer.get_vocab_size(with_added_tokens=True))


def byte_level_tokenizer(directory: Path, *, bos_token: str | None = None, model_max_length: int = 1024) -> Any:
    """`build_byte_level_tokenizer` in `directory`, loaded as the fast tokenizer transformers models use, with the
    chat template's end and padding tokens."""
    from transformers import PreTrainedTokenizerFast

    build_byte_level_tokenizer(directory)
    return PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_file=str(directory / "tokenizer.json"),
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        model_max_length=model_max_length,
        **({} if bos_token is None else {"bos_token": bos_token}),
    )


def tiny_decoder_shape(tokenizer: Any) -> dict[str, Any]:
    """The config of every tiny causal LM here: 2 layers of width 32, with the tokenizer's vocabulary and tokens."""
    shape = {
        "vocab_size": len(tokenizer),
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "max_position_embeddings": 1024,
        # Wider than the usual 0.02 so documents get clearly different scores.
        "initializer_range": 0.3,
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
    if tokenizer.bos_token_id is not None:
        shape["bos_token_id"] = tokenizer.bos_token_id
    return shape


def build_tiny_qwen3_reranker(path: str | Path, seed: int = 0, sequence_classification: bool = False) -> str:
    """Build and save a tiny 2-layer Qwen3 causal LM (or, with `sequence_classification`, the matching one-logit
    `Qwen3ForSequenceClassification` whose head is the "yes" row minus the "no" row, as the `*-seq-cls`
    conversions are) with a byte-level tokenizer and the Qwen3-Reranker chat template. Returns the path."""
    import json

    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM, Qwen3ForSequenceClassification

    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = byte_level_tokenizer(directory)
    tokenizer.chat_template = QWEN3_CHAT_TEMPLATE
    config = Qwen3Config(head_dim=16, tie_word_embeddings=False, **tiny_decoder_shape(tokenizer))
    torch.manual_seed(seed)
    causal = Qwen3ForCausalLM(config)
    if sequence_classification:
        config.num_labels = 1
        classifier = Qwen3ForSequenceClassification(config)  # type: ignore[no-untyped-call]
        classifier.model.load_state_dict(causal.model.state_dict())
        yes, no = tokenizer.convert_tokens_to_ids("yes"), tokenizer.convert_tokens_to_ids("no")
        with torch.no_grad():
            classifier.score.weight.copy_((causal.lm_head.weight[yes] - causal.lm_head.weight[no]).unsqueeze(0))
        classifier.save_pretrained(directory)
    else:
        causal.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    config_file = directory / "config.json"
    saved = json.loads(config_file.read_text(encoding="utf-8"))
    if saved.get("architectures") is None:
        raise RuntimeError("tiny model config lacks architectures")
    return str(directory)


def build_tiny_causal_lm(path: str | Path, family: str, seed: int = 0) -> str:
    """A tiny 2-layer `GemmaForCausalLM` (`family="gemma"`) or `Qwen2ForCausalLM` (`"qwen2"`) with the byte-level
    tokenizer (BOS `<bos>`), for the bge-reranker-v2-gemma and mxbai-rerank v2 recipes. Returns the path."""
    import torch
    from transformers import GemmaConfig, GemmaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = byte_level_tokenizer(directory, bos_token="<bos>")
    shape = tiny_decoder_shape(tokenizer)
    torch.manual_seed(seed)
    if family == "gemma":
        GemmaForCausalLM(GemmaConfig(head_dim=16, **shape)).save_pretrained(directory)
    elif family == "qwen2":
        Qwen2ForCausalLM(Qwen2Config(tie_word_embeddings=False, **shape)).save_pretrained(directory)
    else:
        raise ValueError(f"unknown family {family!r}")
    tokenizer.save_pretrained(directory)
    return str(directory)
