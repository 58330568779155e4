"""Local cross-encoder speed: `TorchCrossEncoder` vs sentence-transformers `CrossEncoder.predict`, same weights.

Workload: a MiniLM-L6-architecture cross-encoder (built offline by `benchmarks/local_models.py`),
1 SciFact claim + 100 SciFact abstracts of 50-300 words, max_length 512 and 256, 2 torch threads. The variants
run interleaved round by round (order rotated each round) and every ratio is the median of per-round ratios,
so drifting machine load hits every variant alike. Also reports the share of the machine's fp32 FLOP limit
(measured `torch.mm` rate vs model FLOPs at the real token counts) and int8 ranking agreement.

    python -m benchmarks.local_speed            # full run (about 3-4 minutes on 2 idle cores)
    python -m benchmarks.local_speed --quick    # smoke run: 1 round, 30 documents
    python -m benchmarks.local_speed --sweep    # batching policies, used to pick DEFAULT_MAX_BATCH_TOKENS
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import random
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import torch

from benchmarks._data import require
from benchmarks.local_models import SCIFACT, abstract, build_minilm_cross_encoder, read_jsonl
from rerank_core.local.torch_engine import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_BATCH_TOKENS,
    TorchCrossEncoder,
    cpu_has_native_bf16,
)


def load_workload(n_docs: int, seed: int = 0) -> tuple[str, list[str]]:
    """A SciFact test claim, its cited abstracts and random others: `n_docs` abstracts of 50-300 words."""
    require(SCIFACT / "corpus.jsonl", SCIFACT / "queries.jsonl", SCIFACT / "qrels" / "test.tsv")
    corpus, queries = read_jsonl(SCIFACT / "corpus.jsonl"), read_jsonl(SCIFACT / "queries.jsonl")
    fits = {doc_id for doc_id, row in corpus.items() if 50 <= len(abstract(row).split()) <= 300}
    cited: dict[str, list[str]] = {}
    with (SCIFACT / "qrels" / "test.tsv").open(encoding="utf-8") as qrels:
        for row in csv.DictReader(qrels, delimiter="\t"):
            if row["corpus-id"] in fits:
                cited.setdefault(row["query-id"], []).append(row["corpus-id"])
    rng = random.Random(seed)
    query_id = rng.choice(sorted(cited))
    others = rng.sample(sorted(fits - set(cited[query_id])), n_docs - len(cited[query_id]))
    doc_ids = cited[query_id] + others
    rng.shuffle(doc_ids)
    return queries[query_id]["text"], [abstract(corpus[doc_id]) for doc_id in doc_ids]


def matmul_rate(repeats: int = 20) -> float:
    """Best observed fp32 `torch.mm` rate in FLOP/s, over a square and the model's own shapes: the ceiling."""
    best = 0.0
    for n, k, m in [(2048, 2048, 2048), (1024, 384, 1536), (1024, 1536, 384)]:
        a, b = torch.randn(n, k), torch.randn(k, m)
        torch.mm(a, b)
        for _ in range(repeats):
            start = time.perf_counter()
            torch.mm(a, b)
            best = max(best, 2 * n * k * m / (time.perf_counter() - start))
    return best


def flops_per_pair(config: Any, tokens: int) -> float:
    """Matmul FLOPs of one BERT forward pass over `tokens` tokens (embeddings and softmax are negligible)."""
    hidden, inner, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    projections = 2 * tokens * (4 * hidden * hidden + 2 * hidden * inner)  # Q, K, V, O and the two FFN matmuls
    attention = 2 * 2 * tokens * tokens * hidden  # Q·Kᵀ and A·V
    head = 2 * hidden * hidden + 2 * hidden  # pooler and classifier, on [CLS] only
    return float(layers * (projections + attention) + head)


def kendall_tau(a: list[float], b: list[float]) -> float:
    n, concordant, discordant = len(a), 0, 0
    for i in range(n):
        for j in range(i + 1, n):
            sign = (a[i] - a[j]) * (b[i] - b[j])
            concordant += sign > 0
            discordant += sign < 0
    return (concordant - discordant) / (n * (n - 1) / 2)


def top_k(scores: list[float], k: int) -> set[int]:
    return set(sorted(range(len(scores)), key=lambda i: -scores[i])[:k])


def timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def measure(variants: dict[str, Callable[[], object]], rounds: int) -> dict[str, list[float]]:
    """Seconds per call of each variant, interleaved; the starting variant rotates every round."""
    for run in variants.values():
        run()  # warm-up: load, allocate, first-call overheads
    names = list(variants)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            seconds[name].append(timed(variants[name]))
    return seconds


def median_ratio(baseline: list[float], variant: list[float]) -> float:
    """Speed-up of `variant` over `baseline`: the median of per-round time ratios."""
    return statistics.median(b / v for b, v in zip(baseline, variant, strict=True))


def speed_table(model_dir: Path, query: str, docs: list[str], rounds: int, max_lengths: list[int]) -> None:
    from sentence_transformers import CrossEncoder

    peak = matmul_rate()
    threads = torch.get_num_threads()
    print(f"fp32 torch.mm peak: {peak / 1e9:.0f} GFLOP/s (best of 2048³ and the model's shapes, {threads} threads)\n")
    print("| max_length | tokens/pair | variant | pairs/s | vs sentence-transformers | share of fp32 FLOP limit |")
    print("|---|---|---|---|---|---|")
    pairs = [(query, doc) for doc in docs]
    for max_length in max_lengths:
        st = CrossEncoder(str(model_dir), max_length=max_length, device="cpu", activation_fn=torch.nn.Sigmoid())
        local = partial(TorchCrossEncoder, str(model_dir), max_length=max_length, local_files_only=True, device="cpu")
        fp32 = local()
        reduced = {"int8": local(quantize="int8")}
        if cpu_has_native_bf16():
            reduced["bf16"] = local(dtype="bfloat16")
        variants: dict[str, Callable[[], object]] = {
            "sentence-transformers predict (bs 32)": partial(st.predict, pairs, batch_size=32),
            "TorchCrossEncoder fp32 (default batching)": partial(fp32.rerank, query, docs),
        }
        for name, reranker in reduced.items():
            variants[f"TorchCrossEncoder {name}"] = partial(reranker.rerank, query, docs)
        seconds = measure(variants, rounds)

        encoded = fp32.tokenizer([query] * len(docs), docs, truncation="only_second", max_length=max_length)
        tokens = [len(ids) for ids in encoded["input_ids"]]
        total_flops = sum(flops_per_pair(st.model.config, t) for t in tokens)
        baseline = seconds[next(iter(seconds))]
        for name, times in seconds.items():
            best = statistics.median(times)
            share = f"{total_flops / best / peak:.0%}" if "fp32" in name or "sentence" in name else "n/a"
            print(
                f"| {max_length} | {statistics.mean(tokens):.0f} | {name} | {len(docs) / best:.1f} | "
                f"{median_ratio(baseline, times):.2f}× | {share} |"
            )
        agreement(query, docs, st, fp32, reduced, max_length)


def agreement(
    query: str,
    docs: list[str],
    st: Any,
    fp32: TorchCrossEncoder,
    reduced: dict[str, TorchCrossEncoder],
    max_length: int,
) -> None:
    """Parity of fp32 with sentence-transformers, and how closely each reduced precision follows fp32."""
    st_scores = st.predict([(query, doc) for doc in docs]).tolist()
    response = fp32.rerank(query, docs)
    ours = [score for _, score in sorted((r.index, r.relevance_score) for r in response.results)]
    same_ranking = [r.index for r in response.results] == sorted(range(len(docs)), key=lambda i: -st_scores[i])
    print(
        f"\nmax_length {max_length}: fp32 vs sentence-transformers: max |Δscore| "
        f"{max(abs(a - b) for a, b in zip(ours, st_scores, strict=True)):.1e}, identical ranking: {same_ranking}"
    )
    logits = fp32.predict_logits(query, docs)
    for name, reranker in reduced.items():
        other = reranker.predict_logits(query, docs)
        print(
            f"max_length {max_length}: {name} vs fp32: Kendall τ {kendall_tau(logits, other):.3f}, "
            f"top-10 overlap {len(top_k(logits, 10) & top_k(other, 10))}/10, "
            f"max |Δlogit| {max(abs(a - b) for a, b in zip(logits, other, strict=True)):.3f} "
            f"(fp32 logits span {max(logits) - min(logits):.3f})"
        )
    print()


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def batching_sweep(model_dir: Path, query: str, docs: list[str], rounds: int) -> None:
    """Batching policies on full abstracts and on short RAG-style passages, against fixed batches of 4 pairs."""
    passages = {
        "abstracts, max_length 512": (docs, 512),
        "abstracts, max_length 256": (docs, 256),
        "first 120 words, max_length 512": ([" ".join(doc.split()[:120]) for doc in docs], 512),
        "first 40 words, max_length 512": ([" ".join(doc.split()[:40]) for doc in docs], 512),
    }
    policies: dict[str, dict[str, Any]] = {
        "4 pairs": {"batch_size": 4, "max_batch_tokens": None},
        "32 pairs": {"batch_size": 32, "max_batch_tokens": None},
        "768 tokens": {"batch_size": 32, "max_batch_tokens": 768},
        "1280 tokens (default)": {"batch_size": 32, "max_batch_tokens": 1280},
        "2048 tokens": {"batch_size": 32, "max_batch_tokens": 2048},
    }
    print("| workload | tokens/pair | batching | pairs/s | vs 4 pairs |")
    print("|---|---|---|---|---|")
    for workload, (texts, max_length) in passages.items():
        variants: dict[str, Callable[[], object]] = {}
        for name, policy in policies.items():
            reranker = TorchCrossEncoder(
                str(model_dir), max_length=max_length, local_files_only=True, device="cpu", **policy
            )
            variants[name] = partial(reranker.rerank, query, texts)
        tokenizer = reranker.tokenizer
        encoded = tokenizer([query] * len(texts), texts, truncation="only_second", max_length=max_length)
        per_pair = statistics.mean(len(ids) for ids in encoded["input_ids"])
        seconds = measure(variants, rounds)
        for name, times in seconds.items():
            ratio = median_ratio(seconds["4 pairs"], times)
            pairs_per_s = len(texts) / statistics.median(times)
            print(f"| {workload} | {per_pair:.0f} | {name} | {pairs_per_s:.1f} | {ratio:.2f}× |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1 round, 30 documents: checks the script works")
    parser.add_argument("--sweep", action="store_true", help="batching policies instead of the speed table")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--docs", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    rounds, n_docs = (1, 30) if args.quick else (args.rounds, args.docs)

    torch.set_num_threads(args.threads)
    import sentence_transformers
    import transformers

    print(
        f"machine: {cpu_name()}, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.2f}; torch {torch.__version__}, transformers {transformers.__version__}, "
        f"sentence-transformers {sentence_transformers.__version__}; "
        f"batches of at most {DEFAULT_BATCH_SIZE} pairs / {DEFAULT_MAX_BATCH_TOKENS} tokens; "
        f"{rounds} rounds, {n_docs} docs\n"
    )
    if os.getloadavg()[0] > 0.5:
        print("WARNING: the machine is busy (load average > 0.5); numbers are not trustworthy.\n")
    model_dir = build_minilm_cross_encoder()
    query, docs = load_workload(n_docs)
    print(f"query: {query!r}\n")
    if args.sweep:
        batching_sweep(model_dir, query, docs, rounds)
    else:
        speed_table(model_dir, query, docs, rounds, [512, 256])
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
