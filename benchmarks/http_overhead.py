"""HTTP client overhead and fan-out of `HTTPReranker` against the loopback emulator (generic dialect).

1. Per-call overhead: `HTTPReranker.rerank` (and `arerank`) on 100 documents vs. the least any client must do
   for the same answer: a pooled `httpx` POST of the same JSON body plus `response.json()`. Calls alternate
   one by one (so drift hits both alike); the medians are compared. Goal: overhead < 1 ms per call.
2. Fan-out: 10,000 documents, 100 per request, concurrency 8, server latency 50 ms. Goal: wall time within
   1.3x the ideal `ceil(batches / concurrency) x latency`, and `arerank` within 1.1x of the floor a hand-written
   client reaches in the same rounds: a raw `httpx.AsyncClient` + `asyncio.Semaphore(8)` posting the same 100
   bodies (built and parsed with `json`, no validation of the answer).

The emulator runs in a child process, so its work does not share the client's GIL, and scores with a near-free
function, so each answer takes its configured latency plus JSON handling and little else.

    python -m benchmarks.http_overhead [--rounds 400] [--fanout-runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection

import httpx
from tests.support.emulator import ProviderEmulator

from benchmarks.synthetic import QUERY, texts
from rerank_core import Document, HTTPReranker

N_DOCUMENTS = 100
FANOUT_DOCUMENTS, PER_REQUEST, CONCURRENCY, LATENCY = 10_000, 100, 8, 0.05


def length_score(query: str, text: str) -> float:
    """A near-free deterministic scorer, so the server's time is its configured latency and little else."""
    return (len(text) % 997) / 997


def _serve(latency: float, conn: Connection) -> None:
    with ProviderEmulator("generic", latency=latency, scorer=length_score) as emu:
        conn.send(emu.base_url)
        conn.recv()  # serve until told to stop


@contextmanager
def emulator_process(latency: float = 0.0) -> Iterator[str]:
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.Process(target=_serve, args=(latency, child), daemon=True)
    process.start()
    try:
        yield parent.recv()
    finally:
        parent.send("stop")
        process.join(timeout=5)


def machine() -> str:
    cpu = platform.processor() or "unknown cpu"
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, httpx {httpx.__version__}, "
        f"load average {load:.2f}"
    )


def overhead(base_url: str, rounds: int) -> dict[str, float]:
    docs = texts(N_DOCUMENTS)
    reranker = HTTPReranker("generic", model="m", base_url=base_url, api_key="k")
    body = reranker.dialect.build_body(QUERY, [Document(t) for t in docs], model="m", top_n=None, options={})
    headers = {"content-type": "application/json", "authorization": "Bearer k"}
    url = reranker.url

    with httpx.Client() as client:

        def raw() -> None:
            client.post(url, content=json.dumps(body).encode(), headers=headers).json()

        def ours() -> None:
            reranker.rerank(QUERY, docs)

        sync = _alternate({"raw": raw, "ours": ours}, rounds)
    asynchronous = asyncio.run(_async_overhead(reranker, url, body, headers, docs, rounds))
    reranker.close()
    return {
        "sync_raw_us": sync["raw"],
        "sync_ours_us": sync["ours"],
        "async_raw_us": asynchronous["raw"],
        "async_ours_us": asynchronous["ours"],
    }


def _alternate(contenders: dict[str, Callable[[], None]], rounds: int) -> dict[str, float]:
    timings: dict[str, list[float]] = {name: [] for name in contenders}
    for round_ in range(rounds + 20):  # the first 20 rounds warm up pools and caches
        for name, function in contenders.items():
            started = time.perf_counter()
            function()
            if round_ >= 20:
                timings[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) * 1e6 for name, values in timings.items()}


async def _async_overhead(
    reranker: HTTPReranker, url: str, body: object, headers: dict[str, str], docs: list[str], rounds: int
) -> dict[str, float]:
    timings: dict[str, list[float]] = {"raw": [], "ours": []}
    async with httpx.AsyncClient() as client:
        for round_ in range(rounds + 20):
            started = time.perf_counter()
            (await client.post(url, content=json.dumps(body).encode(), headers=headers)).json()
            middle = time.perf_counter()
            await reranker.arerank(QUERY, docs)
            ended = time.perf_counter()
            if round_ >= 20:
                timings["raw"].append(middle - started)
                timings["ours"].append(ended - middle)
        await reranker.aclose()
    return {name: statistics.median(values) * 1e6 for name, values in timings.items()}


def fanout(base_url: str, runs: int) -> dict[str, float]:
    docs = texts(FANOUT_DOCUMENTS)
    reranker = HTTPReranker(
        "generic",
        model="m",
        base_url=base_url,
        api_key="k",
        max_documents_per_request=PER_REQUEST,
        max_concurrency=CONCURRENCY,
    )
    sync_times, async_times, raw_times, ratios = [], [], [], []
    url = reranker.url
    headers = {"content-type": "application/json", "authorization": "Bearer k"}

    async def raw_fanout(client: httpx.AsyncClient) -> None:
        gate = asyncio.Semaphore(CONCURRENCY)

        async def post(start: int) -> list[object]:
            body = {"model": "m", "query": QUERY, "documents": docs[start : start + PER_REQUEST]}
            async with gate:
                response = await client.post(url, content=json.dumps(body).encode(), headers=headers)
            results: list[object] = response.json()["results"]
            return results

        answers = await asyncio.gather(*(post(start) for start in range(0, FANOUT_DOCUMENTS, PER_REQUEST)))
        assert sum(len(a) for a in answers) == FANOUT_DOCUMENTS

    async def run_async() -> None:
        async with httpx.AsyncClient() as client:
            await raw_fanout(client)
            await reranker.arerank(QUERY, docs)  # warm both pools
            for _ in range(runs):  # interleaved: raw, then ours, in every round
                started = time.perf_counter()
                await raw_fanout(client)
                middle = time.perf_counter()
                response = await reranker.arerank(QUERY, docs)
                ended = time.perf_counter()
                raw_times.append(middle - started)
                async_times.append(ended - middle)
                ratios.append((ended - middle) / (middle - started))
                assert len(response.results) == FANOUT_DOCUMENTS
                del response  # freed outside both clocks: freeing the last answer is the caller's cost, not a call's
        await reranker.aclose()

    for _ in range(runs):
        started = time.perf_counter()
        response = reranker.rerank(QUERY, docs)
        sync_times.append(time.perf_counter() - started)
        assert len(response.results) == FANOUT_DOCUMENTS
        assert len(response.request_ids) == FANOUT_DOCUMENTS // PER_REQUEST
        del response
    asyncio.run(run_async())
    reranker.close()
    return {
        "sync_s": statistics.median(sync_times),
        "async_s": statistics.median(async_times),
        "raw_async_s": statistics.median(raw_times),
        "async_vs_raw": statistics.median(ratios),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=400)
    parser.add_argument("--fanout-runs", type=int, default=5)
    args = parser.parse_args()

    print(f"machine: {machine()}")
    with emulator_process() as base_url:
        o = overhead(base_url, args.rounds)
    for mode in ("sync", "async"):
        raw, ours = o[f"{mode}_raw_us"], o[f"{mode}_ours_us"]
        print(
            f"{mode:5} per call, {N_DOCUMENTS} docs: raw httpx {raw:7.0f} µs | HTTPReranker {ours:7.0f} µs | "
            f"overhead {ours - raw:5.0f} µs (goal < 1000 µs, {args.rounds} interleaved rounds, medians)"
        )

    ideal = math.ceil(FANOUT_DOCUMENTS / PER_REQUEST / CONCURRENCY) * LATENCY
    with emulator_process(LATENCY) as base_url:
        f = fanout(base_url, args.fanout_runs)
    for mode in ("sync", "async"):
        wall = f[f"{mode}_s"]
        print(
            f"{mode:5} fan-out, {FANOUT_DOCUMENTS} docs / {PER_REQUEST} per request / concurrency {CONCURRENCY} / "
            f"{LATENCY * 1000:.0f} ms latency: {wall:.3f} s vs ideal {ideal:.3f} s = {wall / ideal:.2f}x "
            f"(goal <= 1.30x, median of {args.fanout_runs})"
        )
    print(
        f"async fan-out floor, raw httpx AsyncClient + Semaphore({CONCURRENCY}): {f['raw_async_s']:.3f} s; "
        f"arerank / floor = {f['async_vs_raw']:.2f}x (goal <= 1.10x, median of per-round ratios, interleaved)"
    )


if __name__ == "__main__":
    main()
