"""Tiny cross-encoders built inside the test session: nothing is downloaded.

Each is a 2-layer BERT sequence classifier with deterministic weights and a real WordPiece tokenizer (a small
vocabulary of common English words plus single characters, so any ASCII text tokenizes without `[UNK]` floods),
saved with `save_pretrained` so it loads exactly like a hub model through `AutoTokenizer` /
`AutoModelForSequenceClassification` and through sentence-transformers `CrossEncoder`.
"""

from __future__ import annotations

import string
from pathlib import Path

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
    from rerank_core.onnx_export import main

    argv = [source, str(path), *(["--int8"] if int8 else [])]
    if main(argv) != 0:
        raise RuntimeError(f"export-onnx {argv} failed")
    return str(path)
