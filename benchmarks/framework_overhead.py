"""Framework wrapper overhead: each wrapper vs. calling rerank-core directly, on the same 100 documents.

Every wrapper and the baseline share one `HTTPReranker` pointed at the loopback emulator, so they send identical
requests; the difference is the wrappers' own work (document mapping, copies, callbacks, events). Calls are
interleaved round by round (so drift hits every contender alike) and the medians are compared. The baseline is
the core called directly with the same documents, prebuilt as core `Document`s with the same text, id and
metadata, so every contender sends byte-identical requests and the difference is the wrapper's own work.

It runs twice: with no simulated latency (the worst case for the ratio: the whole call is local Python work) and
with a simulated provider latency (`--latency`, default 50 ms; hosted rerank APIs take longer than that).

    python -m benchmarks.framework_overhead [--rounds 300] [--latency 0.05]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import haystack
import langchain_core.documents as lc
from llama_index.core.schema import NodeWithScore, TextNode
from tests.support.emulator import ProviderEmulator

from benchmarks.synthetic import QUERY, texts
from haystack_integrations.components.rankers.rerank import RerankRanker
from rerank_core import Document, load_reranker
from rerank_langchain import RerankCompressor
from rerank_llamaindex import RerankPostprocessor

N_DOCUMENTS = 100


def contenders(base_url: str) -> tuple[dict[str, Callable[[], Any]], dict[str, Callable[[], Awaitable[Any]]]]:
    core = load_reranker({"provider": "generic", "model": "m", "base_url": base_url, "api_key": "k"})
    strings = texts(N_DOCUMENTS)
    core_docs = [Document(t, id=f"d{i}", metadata={"i": i}) for i, t in enumerate(strings)]
    lc_docs = [lc.Document(t, id=f"d{i}", metadata={"i": i}) for i, t in enumerate(strings)]
    # The metadata key is excluded from the embed text, so LlamaIndex scores exactly the same text.
    li_nodes = [
        NodeWithScore(
            node=TextNode(text=t, id_=f"d{i}", metadata={"i": i}, excluded_embed_metadata_keys=["i"]), score=0.5
        )
        for i, t in enumerate(strings)
    ]
    hs_docs = [haystack.Document(content=t, id=f"d{i}", meta={"i": i}) for i, t in enumerate(strings)]
    compressor = RerankCompressor(reranker=core, top_n=None)
    postprocessor = RerankPostprocessor(reranker=core, top_n=None)
    ranker = RerankRanker(core, top_k=None)
    sync: dict[str, Callable[[], Any]] = {
        "core": lambda: core.rerank(QUERY, core_docs),
        "langchain": lambda: compressor.compress_documents(lc_docs, QUERY),
        "llamaindex": lambda: postprocessor.postprocess_nodes(li_nodes, query_str=QUERY),
        "haystack": lambda: ranker.run(QUERY, hs_docs),
    }
    asynchronous: dict[str, Callable[[], Awaitable[Any]]] = {
        "core": lambda: core.arerank(QUERY, core_docs),
        "langchain": lambda: compressor.acompress_documents(lc_docs, QUERY),
        "llamaindex": lambda: postprocessor.apostprocess_nodes(li_nodes, query_str=QUERY),
        "haystack": lambda: ranker.run_async(QUERY, hs_docs),
    }
    return sync, asynchronous


def measure_sync(calls: dict[str, Callable[[], Any]], rounds: int) -> dict[str, float]:
    for call in calls.values():  # warm connections and imports
        call()
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            started = time.perf_counter()
            call()
            samples[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in samples.items()}


async def measure_async(calls: dict[str, Callable[[], Awaitable[Any]]], rounds: int) -> dict[str, float]:
    for call in calls.values():
        await call()
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            started = time.perf_counter()
            await call()
            samples[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in samples.items()}


def report(title: str, medians: dict[str, float]) -> None:
    base = medians["core"]
    print(f"\n{title}: median per call, {N_DOCUMENTS} documents")
    print("| contender | median (ms) | overhead vs core |")
    print("|---|---:|---:|")
    for name, value in medians.items():
        overhead = (
            "baseline" if name == "core" else f"{(value / base - 1) * 100:+.1f}% ({(value - base) * 1e3:+.2f} ms)"
        )
        print(f"| {name} | {value * 1e3:.2f} | {overhead} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=300, help="rounds without latency (a fifth with latency)")
    parser.add_argument("--latency", type=float, default=0.05, help="simulated provider latency, seconds")
    args = parser.parse_args()
    for latency, rounds in ((0.0, args.rounds), (args.latency, max(args.rounds // 5, 10))):
        with ProviderEmulator("generic", latency=latency) as emu:
            sync, asynchronous = contenders(emu.base_url)
            report(f"sync, emulator latency {latency * 1e3:.0f} ms", measure_sync(sync, rounds))
            report(f"async, emulator latency {latency * 1e3:.0f} ms", asyncio.run(measure_async(asynchronous, rounds)))


if __name__ == "__main__":
    main()
