"""Long documents: does `long_documents="chunk"` find evidence that truncation cuts off, and what does it cost?

Workload (BEIR SciFact, read at run time from ../shared/data, never shipped): for each test claim, 10 candidate
documents, each a concatenation of 6 abstracts (~1,300 words, ~1,900 tokens). One candidate holds the claim's
gold abstract at a random depth (1st to 6th abstract); the others hold random abstracts. The provider is the
loopback emulator with a scorer that, like a 512-token cross-encoder, reads only what fits in 512 tokens next to
the query (cut with the real MiniLM-L6 WordPiece tokenizer), and scores it with BM25 (IDF from the corpus).
The same reranker config is run with "truncate" (the default: the provider sees the start of each document)
and with "chunk" (max_tokens_per_document=400, overlap 64, approximate token counting as for any remote
provider), in the same run. Reported: accuracy@1 (gold candidate ranked first) and MRR, overall and by the
depth of the gold abstract; windows sent per query; and the CPU time of the splitting itself, with the
approximate counter and with the real tokenizer (the local model's path).

    python -m benchmarks.long_documents [--queries 300]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import random
import re
import statistics
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from tests.support.emulator import ProviderEmulator

from benchmarks._data import SHARED, require
from rerank_core import load_reranker
from rerank_core.chunking import TokenSpans, split_windows

SCIFACT = SHARED / "data" / "scifact"
TOKENIZER = SHARED / "models" / "ms-marco-MiniLM-L-6-v2-tokenizer"
CANDIDATES, ABSTRACTS_PER_DOC, MAX_LENGTH = 10, 6, 512
BUDGET, OVERLAP = 400, 64
WORD = re.compile(r"[a-z0-9]+")


def load_scifact() -> tuple[dict[str, str], list[tuple[str, str]]]:
    corpus = {}
    for line in (SCIFACT / "corpus.jsonl").read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        corpus[item["_id"]] = f"{item['title']}. {item['text']}"
    queries = {}
    for line in (SCIFACT / "queries.jsonl").read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        queries[item["_id"]] = item["text"]
    pairs: dict[str, str] = {}
    for line in (SCIFACT / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        query_id, doc_id, _ = line.split("\t")
        pairs.setdefault(query_id, doc_id)  # the first gold abstract of each claim
    return corpus, [(queries[q], d) for q, d in pairs.items() if d in corpus]


def bm25_scorer(corpus: dict[str, str], tokenizer: Any) -> Callable[[str, str], float]:
    """BM25 over the part of the text a 512-token cross-encoder would see next to the query."""
    frequency: Counter[str] = Counter()
    for text in corpus.values():
        frequency.update(set(WORD.findall(text.lower())))
    n = len(corpus)
    idf = {term: math.log(1 + (n - df + 0.5) / (df + 0.5)) for term, df in frequency.items()}
    average = statistics.fmean(len(WORD.findall(text.lower())) for text in corpus.values())

    def score(query: str, text: str) -> float:
        room = MAX_LENGTH - len(tokenizer(query, add_special_tokens=False)["input_ids"]) - 3
        offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        seen = text[: offsets[min(room, len(offsets)) - 1][1]] if offsets else ""
        terms = Counter(WORD.findall(seen.lower()))
        length = sum(terms.values())
        total = 0.0
        for term in set(WORD.findall(query.lower())):
            tf = terms.get(term, 0)
            total += idf.get(term, 0.0) * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * length / average)) if tf else 0.0
        return round(total, 6)

    return score


def build_cases(
    corpus: dict[str, str], pairs: list[tuple[str, str]], limit: int
) -> list[tuple[str, list[str], int, int]]:
    """(query, candidate texts, index of the gold candidate, depth of the gold abstract in it)."""
    rng = random.Random(0)
    ids = list(corpus)
    cases = []
    for query, gold in pairs[:limit]:
        others = [i for i in rng.sample(ids, CANDIDATES * ABSTRACTS_PER_DOC + 1) if i != gold]
        docs = [
            [corpus[i] for i in others[k * ABSTRACTS_PER_DOC : (k + 1) * ABSTRACTS_PER_DOC]] for k in range(CANDIDATES)
        ]
        target, depth = rng.randrange(CANDIDATES), rng.randrange(ABSTRACTS_PER_DOC)
        docs[target][depth] = corpus[gold]
        cases.append((query, [" ".join(parts) for parts in docs], target, depth))
    return cases


def evaluate(reranker: Any, cases: list[tuple[str, list[str], int, int]]) -> dict[str, Any]:
    ranks: list[int] = []
    by_depth: dict[int, list[int]] = {d: [] for d in range(ABSTRACTS_PER_DOC)}
    for query, docs, target, depth in cases:
        response = reranker.rerank(query, docs)
        rank = next(position for position, r in enumerate(response.results, start=1) if r.index == target)
        ranks.append(rank)
        by_depth[depth].append(rank)
    return {
        "acc@1": sum(r == 1 for r in ranks) / len(ranks),
        "mrr": statistics.fmean(1 / r for r in ranks),
        "acc@1 by depth": [sum(r == 1 for r in ranks_) / max(len(ranks_), 1) for ranks_ in by_depth.values()],
    }


def split_cost(cases: list[tuple[str, list[str], int, int]], spans: TokenSpans | None) -> tuple[float, list[str]]:
    """Milliseconds to split one long document, and the window texts."""
    docs = [doc for _, candidates, _, _ in cases[:30] for doc in candidates]
    start = time.perf_counter()
    windows = [split_windows(doc, BUDGET, OVERLAP, spans) for doc in docs]
    elapsed = (time.perf_counter() - start) * 1000 / len(docs)
    return elapsed, [doc[a:b] for doc, spans_ in zip(docs, windows, strict=True) for a, b in spans_]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()
    require(SCIFACT / "corpus.jsonl", SCIFACT / "queries.jsonl", SCIFACT / "qrels" / "test.tsv", TOKENIZER)

    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(TOKENIZER), model_max_length=1_000_000)  # long texts, no warning
    corpus, pairs = load_scifact()
    cases = build_cases(corpus, pairs, args.queries)
    words = statistics.fmean(len(doc.split()) for _, docs, _, _ in cases for doc in docs)
    tokens = statistics.fmean(len(tokenizer(doc)["input_ids"]) for _, docs, _, _ in cases[:20] for doc in docs)
    print(f"python {platform.python_version()}, {platform.machine()}, {len(cases)} queries x {CANDIDATES} candidates")
    print(f"candidate length: {words:.0f} words, {tokens:.0f} MiniLM tokens on average")

    with ProviderEmulator("generic", scorer=bm25_scorer(corpus, tokenizer)) as emu:
        base = {"provider": "generic", "model": "bm25-512", "base_url": emu.base_url, "api_key": "k"}
        truncate = load_reranker(base)
        chunk = load_reranker(
            {**base, "long_documents": "chunk", "max_tokens_per_document": BUDGET, "chunk_overlap": OVERLAP}
        )
        results = {}
        for name, reranker in (("truncate", truncate), ("chunk", chunk)):
            first = emu.request_count
            results[name] = evaluate(reranker, cases)
            bodies = [request.body for request in emu.requests[first:]]
            results[name]["requests"] = len(bodies)
            results[name]["texts/request"] = statistics.fmean(len(body["documents"]) for body in bodies)
            results[name]["words/request"] = statistics.fmean(
                sum(len(doc.split()) for doc in body["documents"]) for body in bodies
            )

    for name, result in results.items():
        depths = " ".join(f"{value:.2f}" for value in result["acc@1 by depth"])
        print(
            f"{name:>8}: acc@1 {result['acc@1']:.3f}  MRR {result['mrr']:.3f}  acc@1 by depth 1..6: {depths}  "
            f"| {result['requests']} requests, {result['texts/request']:.1f} texts and "
            f"{result['words/request']:.0f} words per request"
        )

    backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())

    def spans(text: str) -> list[tuple[int, int]]:
        return list(backend.encode(text, add_special_tokens=False).offsets)

    docs_split = 30 * CANDIDATES
    for name, counter in (("approximate count", None), ("real tokenizer", spans)):
        elapsed, windows = split_cost(cases, counter)
        sizes = [len(backend.encode(w, add_special_tokens=False).ids) for w in windows]
        over = sum(size > BUDGET for size in sizes) / len(sizes)
        print(
            f"split, {name:>17}: {elapsed:.2f} ms/doc, {len(windows) / docs_split:.1f} windows/doc, "
            f"real tokens/window mean {statistics.fmean(sizes):.0f} max {max(sizes)}, over budget {over:.0%}"
        )


if __name__ == "__main__":
    main()
