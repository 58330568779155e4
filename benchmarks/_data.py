"""Data that some benchmarks read from outside the repository (never shipped with it)."""

from __future__ import annotations

from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared"
"""The workspace's shared folder next to the checkout: BEIR SciFact and the MiniLM tokenizer live there."""


def require(*paths: Path) -> None:
    """Stop with a message that says what is missing and where it was looked for, instead of a traceback."""
    missing = [path for path in paths if not path.exists()]
    if missing:
        listed = "\n".join(f"  {path}" for path in missing)
        raise SystemExit(
            f"this benchmark needs data that is not in the repository, and it was not found:\n{listed}\n"
            "Put BEIR SciFact (corpus.jsonl, queries.jsonl, qrels/) under ../shared/data/scifact and the "
            "ms-marco-MiniLM-L-6-v2 tokenizer under ../shared/models, next to the checkout."
        )
