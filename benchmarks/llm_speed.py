"""LLM reranker speed: `TorchCrossEncoder` (Qwen3-Reranker recipe) vs sentence-transformers `CrossEncoder`
(`LogitScore`, chat template), same weights, same documents.

Weights: a random Qwen3 causal LM of Qwen3-Reranker-0.6B's width (hidden 1024, 16 heads, 8 KV heads, FFN 3072,
tied 151,669-token embeddings) with few layers, built offline, and the byte-level tokenizer of the tests (a small
vocabulary, so words take several tokens and most SciFact abstracts fill the 512-token window). 1 SciFact claim +
SciFact abstracts, max_length 512, interleaved rounds (order rotated), median of per-round ratios; rerank-core
also without its shared-prefix cache, to show that lever. Memory is measured in a fresh process per system: the
run's peak RSS, and how far RSS rose above its after-load level during one call.

    python -m benchmarks.llm_speed                      # 3 rounds, 32 documents, 2 layers
    python -m benchmarks.llm_speed --rounds 5 --docs 64 --layers 4
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path

from benchmarks.local_speed import kendall_tau, load_workload, measure, median_ratio
from rerank_core.base import sigmoid

ROOT = Path(__file__).resolve().parents[1]

MAX_LENGTH = 512


def build(folder: Path, layers: int) -> str:
    import torch
    from tests.support.tiny_models import QWEN3_CHAT_TEMPLATE, byte_level_tokenizer
    from transformers import Qwen3Config, Qwen3ForCausalLM

    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = byte_level_tokenizer(folder, model_max_length=40960)
    tokenizer.chat_template = QWEN3_CHAT_TEMPLATE
    config = Qwen3Config(
        vocab_size=151669,
        hidden_size=1024,
        intermediate_size=3072,
        num_hidden_layers=layers,
        num_attention_heads=16,
        num_key_value_heads=8,
        head_dim=128,
        max_position_embeddings=40960,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(0)
    Qwen3ForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


WHOLE = "rerank-core, whole prompt per row"
NAMES = ("sentence-transformers", "rerank-core", WHOLE)
"""`WHOLE` runs the shared prompt prefix (system prompt, instruction, query) in every row again: the lever the
prefix's key/value cache removes."""


def load(folder: str, name: str) -> object:
    if name != "sentence-transformers":
        from rerank_core.local.torch_engine import TorchCrossEncoder

        reranker = TorchCrossEncoder(folder, max_length=MAX_LENGTH, device="cpu")
        reranker.warm_up()
        return reranker
    from sentence_transformers import CrossEncoder

    return CrossEncoder(folder, max_length=MAX_LENGTH, device="cpu")


def scorer(name: str, system: object, query: str, docs: list[str]) -> list[float]:
    """P(yes) of every document, in input order."""
    if name == WHOLE:
        from rerank_core.local import torch_engine

        shortest, torch_engine.MIN_SHARED_PREFIX = torch_engine.MIN_SHARED_PREFIX, 10**9
        try:
            return [sigmoid(x) for x in system.predict_logits(query, docs)]  # type: ignore[attr-defined]
        finally:
            torch_engine.MIN_SHARED_PREFIX = shortest
    if name == "rerank-core":
        return [sigmoid(x) for x in system.predict_logits(query, docs)]  # type: ignore[attr-defined]
    return [float(x) for x in system.predict([(query, d) for d in docs])]  # type: ignore[attr-defined]


def peak_memory(folder: str, name: str, n_docs: int) -> dict[str, float]:
    """MB, in a fresh process that loads `name` and scores the documents once: the peak RSS of the whole run (the
    load dominates it), and how far RSS rose above its after-load level during the call (sampled every 2 ms)."""
    code = (
        "import json, os, resource, threading, time\n"
        "from benchmarks.llm_speed import load, scorer\n"
        "from benchmarks.local_speed import load_workload\n"
        "page = os.sysconf('SC_PAGE_SIZE')\n"
        "rss = lambda: int(open('/proc/self/statm').read().split()[1]) * page\n"
        f"query, docs = load_workload({n_docs})\n"
        f"system = load({folder!r}, {name!r})\n"
        "before, peak, done = rss(), [0], threading.Event()\n"
        "def sample():\n"
        "    while not done.is_set():\n"
        "        peak[0] = max(peak[0], rss())\n"
        "        time.sleep(0.002)\n"
        "sampler = threading.Thread(target=sample)\n"
        "sampler.start()\n"
        f"scorer({name!r}, system, query, docs)\n"
        "done.set()\n"
        "sampler.join()\n"
        "print(json.dumps({'run_peak_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,\n"
        "                  'call_extra_mb': max(peak[0] - before, 0) / 2**20}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return {key: round(value) for key, value in figures.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--docs", type=int, default=32)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--no-memory", action="store_true")
    args = parser.parse_args()
    query, docs = load_workload(args.docs)
    with tempfile.TemporaryDirectory() as tmp:
        folder = build(Path(tmp) / "qwen3-reranker-bench", args.layers)
        loaded = {name: load(folder, name) for name in NAMES}
        scores = {name: scorer(name, system, query, docs) for name, system in loaded.items()}
        gap = max(abs(a - b) for a, b in zip(scores["sentence-transformers"], scores["rerank-core"], strict=True))
        runs: dict[str, Callable[[], object]] = {
            name: partial(scorer, name, system, query, docs) for name, system in loaded.items()
        }
        seconds = measure(runs, args.rounds)
        ratio = median_ratio(seconds["sentence-transformers"], seconds["rerank-core"])
        report = {
            "documents": len(docs),
            "layers": args.layers,
            "pairs_per_second": {name: [round(len(docs) / s, 2) for s in runs] for name, runs in seconds.items()},
            "speedup_median": round(ratio, 3),
            "speedup_median_whole_prompt_per_row": round(
                median_ratio(seconds["sentence-transformers"], seconds[WHOLE]), 3
            ),
            "max_logit_gap": gap,
            "kendall_tau": kendall_tau(scores["sentence-transformers"], scores["rerank-core"]),
        }
        if not args.no_memory:
            report["memory_mb"] = {name: peak_memory(folder, name, args.docs) for name in NAMES}
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
