"""HTTP client overhead, first calls, fan-out and replicas of `HTTPReranker` against loopback emulators.

1. Per-call overhead: `HTTPReranker.rerank` (and `arerank`) on 100 documents vs. the least any client must do
   for the same answer: a pooled `httpx` POST of the same JSON body plus `response.json()`. Calls alternate
   one by one (so drift hits both alike); the medians are compared. Short synthetic documents, and 100 SciFact
   abstracts (300+ tokens each) when ../shared/data/scifact is there. The overhead is the difference in CPU time
   on the calling thread: the client's own cost. Wall times are printed too; they also hold the server's time,
   which on a 2-core machine moves from run to run by more than the overhead measured. Goal: overhead <= 0.3 ms
   per call. With orjson installed (the `fast-json` extra) our calls are timed both ways, with it and
   as an install without it, in the same rounds; raw httpx always encodes with the standard library, as
   `httpx.post(json=...)` does.
2. First calls on a fresh event loop: `asyncio.run` of two concurrent `arerank` calls against a 0.3 s server,
   with one reranker kept across loops (an app that runs a loop per request), vs raw httpx creating one
   `AsyncClient` per loop, interleaved. Goal: no slower than raw httpx.
3. Replicas: 48 concurrent calls against servers that answer one request at a time in 20 ms each (a saturated
   GPU behaves so): three replicas listed in `base_url` vs one. Goal: >= 2.7x the throughput.
4. Fan-out: 10,000 documents, 100 per request, concurrency 8, server latency 50 ms. Goal: wall time within
   1.3x the ideal `ceil(batches / concurrency) x latency`, and `arerank` within 1.1x of the floor a hand-written
   client reaches in the same rounds: a raw `httpx.AsyncClient` + `asyncio.Semaphore(8)` posting the same 100
   bodies (built and parsed with `json`, no validation of the answer).

The emulator runs in a child process, so its work does not share the client's GIL, and scores with a near-free
function, so each answer takes its configured latency plus JSON handling and little else.

    python -m benchmarks.http_overhead [--rounds 400] [--fanout-runs 5] [--first-call-rounds 10]
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
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection

import httpx
from tests.support.emulator import ProviderEmulator

from benchmarks._data import SHARED
from benchmarks.synthetic import QUERY, texts
from rerank_core import Document, HTTPReranker
from rerank_core._json import _orjson, without_orjson

N_DOCUMENTS = 100
FANOUT_DOCUMENTS, PER_REQUEST, CONCURRENCY, LATENCY = 10_000, 100, 8, 0.05


def length_score(query: str, text: str) -> float:
    """A near-free deterministic scorer, so the server's time is its configured latency and little else."""
    return (len(text) % 997) / 997


class OneAtATime(ProviderEmulator):
    """A server that answers one request at a time (the others queue), as a saturated model server does."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._busy = threading.Lock()

    @contextmanager
    def _counting_in_flight(self) -> Iterator[None]:
        with self._busy:
            yield


def _serve(latency: float, conn: Connection, one_at_a_time: bool = False) -> None:
    kind = OneAtATime if one_at_a_time else ProviderEmulator
    with kind("generic", latency=latency, scorer=length_score) as emu:
        conn.send(emu.base_url)
        conn.recv()  # serve until told to stop


@contextmanager
def emulator_process(latency: float = 0.0, *, one_at_a_time: bool = False) -> Iterator[str]:
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.Process(target=_serve, args=(latency, child, one_at_a_time), daemon=True)
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


def scifact_abstracts(n: int) -> list[str] | None:
    """The `n` longest-but-typical SciFact abstracts: the first `n` with at least 300 words' worth of text."""
    corpus = SHARED / "data" / "scifact" / "corpus.jsonl"
    if not corpus.exists():
        return None
    found: list[str] = []
    with corpus.open() as lines:
        for line in lines:
            record = json.loads(line)
            text = f"{record.get('title', '')} {record['text']}".strip()
            if len(text.split()) >= 230:  # about 300 word-piece tokens
                found.append(text)
                if len(found) == n:
                    break
    return found


def overhead(base_url: str, rounds: int, docs: list[str]) -> dict[str, float]:
    """Medians in µs: `{sync,async}_{contender}_us` of wall time, `..._cpu_us` of CPU time on the calling thread."""
    reranker = HTTPReranker("generic", model="m", base_url=base_url, api_key="k")
    body = reranker.dialect.build_body(QUERY, [Document(t) for t in docs], model="m", top_n=None, options={})
    headers = {"content-type": "application/json", "authorization": "Bearer k"}
    url = reranker.url

    with httpx.Client() as client:

        def raw() -> None:
            client.post(url, content=json.dumps(body).encode(), headers=headers).json()

        def ours() -> None:
            reranker.rerank(QUERY, docs)

        def ours_standard_json() -> None:
            with without_orjson():
                reranker.rerank(QUERY, docs)

        contenders: dict[str, Callable[[], None]] = {"raw": raw, "ours": ours}
        if _orjson is not None:
            contenders["ours_standard_json"] = ours_standard_json
        sync = _alternate(contenders, rounds)
    asynchronous = asyncio.run(_async_overhead(reranker, url, body, headers, docs, rounds))
    reranker.close()
    return {f"sync_{name}": value for name, value in sync.items()} | {
        f"async_{name}": value for name, value in asynchronous.items()
    }


class _Clocks:
    """Each contender's wall time and CPU time on the calling thread, round by round."""

    def __init__(self, names: Iterable[str]) -> None:
        self.wall: dict[str, list[float]] = {name: [] for name in names}
        self.cpu: dict[str, list[float]] = {name: [] for name in self.wall}

    def add(self, name: str, wall: float, cpu: float) -> None:
        self.wall[name].append(wall)
        self.cpu[name].append(cpu)

    def medians_us(self) -> dict[str, float]:
        wall = {f"{name}_us": statistics.median(values) * 1e6 for name, values in self.wall.items()}
        return wall | {f"{name}_cpu_us": statistics.median(values) * 1e6 for name, values in self.cpu.items()}


def _alternate(contenders: dict[str, Callable[[], None]], rounds: int) -> dict[str, float]:
    clocks = _Clocks(contenders)
    for round_ in range(rounds + 20):  # the first 20 rounds warm up pools and caches
        for name, function in contenders.items():
            wall, cpu = time.perf_counter(), time.thread_time()
            function()
            if round_ >= 20:
                clocks.add(name, time.perf_counter() - wall, time.thread_time() - cpu)
    return clocks.medians_us()


async def _async_overhead(
    reranker: HTTPReranker, url: str, body: object, headers: dict[str, str], docs: list[str], rounds: int
) -> dict[str, float]:
    async with httpx.AsyncClient() as client:

        async def raw() -> None:
            (await client.post(url, content=json.dumps(body).encode(), headers=headers)).json()

        async def ours() -> None:
            await reranker.arerank(QUERY, docs)

        async def ours_standard_json() -> None:
            with without_orjson():
                await reranker.arerank(QUERY, docs)

        contenders: dict[str, Callable[[], Awaitable[None]]] = {"raw": raw, "ours": ours}
        if _orjson is not None:
            contenders["ours_standard_json"] = ours_standard_json
        clocks = _Clocks(contenders)
        for round_ in range(rounds + 20):
            for name, function in contenders.items():
                wall, cpu = time.perf_counter(), time.thread_time()  # the loop runs on this thread
                await function()
                if round_ >= 20:
                    clocks.add(name, time.perf_counter() - wall, time.thread_time() - cpu)
        await reranker.aclose()
    return clocks.medians_us()


def first_calls(base_url: str, rounds: int) -> dict[str, float]:
    """Medians of `asyncio.run` of two concurrent calls: ours with one reranker across loops, and raw httpx."""
    docs = texts(20)
    reranker = HTTPReranker("generic", model="m", base_url=base_url, api_key="k")
    body = json.dumps({"model": "m", "query": QUERY, "documents": docs}).encode()
    headers = {"content-type": "application/json", "authorization": "Bearer k"}
    url = reranker.url

    async def raw() -> None:
        async with httpx.AsyncClient() as client:
            answers = await asyncio.gather(*(client.post(url, content=body, headers=headers) for _ in range(2)))
            for answer in answers:
                answer.json()

    async def ours() -> None:
        await asyncio.gather(*(reranker.arerank(QUERY, docs) for _ in range(2)))

    asyncio.run(ours())  # the process's first call imports and builds what every later one reuses
    timings: dict[str, list[float]] = {"raw": [], "ours": []}
    for _ in range(rounds):
        for name, run in (("raw", raw), ("ours", ours)):
            started = time.perf_counter()
            asyncio.run(run())
            timings[name].append(time.perf_counter() - started)
    reranker.close()
    return {name: statistics.median(values) for name, values in timings.items()}


def replicas(base_urls: list[str], calls: int) -> dict[str, float]:
    """Wall time of `calls` concurrent calls with every replica listed, and with the first alone (medians of 3)."""
    docs = texts(20)

    async def run(urls: list[str]) -> float:
        reranker = HTTPReranker("generic", model="m", base_url=urls, api_key="k")
        await reranker.arerank(QUERY, docs)  # warm: a pool, and a latency figure per replica
        await asyncio.gather(*(reranker.arerank(QUERY, docs) for _ in range(len(urls) * 2)))
        started = time.perf_counter()
        await asyncio.gather(*(reranker.arerank(QUERY, docs) for _ in range(calls)))
        elapsed = time.perf_counter() - started
        await reranker.aclose()
        return elapsed

    one, many = [], []
    for _ in range(3):  # interleaved
        one.append(asyncio.run(run(base_urls[:1])))
        many.append(asyncio.run(run(base_urls)))
    return {"one_s": statistics.median(one), "many_s": statistics.median(many)}


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
    parser.add_argument("--first-call-rounds", type=int, default=10)
    parser.add_argument("--replica-calls", type=int, default=48)
    args = parser.parse_args()

    print(f"machine: {machine()}")
    sets = {"short": texts(N_DOCUMENTS)}
    long = scifact_abstracts(N_DOCUMENTS)
    if long is not None:
        sets["SciFact"] = long
    with emulator_process() as base_url:
        for label, docs in sets.items():
            o = overhead(base_url, args.rounds, docs)
            size = len(json.dumps({"query": QUERY, "documents": docs})) / 1000
            for mode in ("sync", "async"):
                for name, encoder in (("ours", "orjson" if _orjson else "json"), ("ours_standard_json", "json")):
                    if f"{mode}_{name}_us" not in o:
                        continue
                    raw, ours = o[f"{mode}_raw_us"], o[f"{mode}_{name}_us"]
                    raw_cpu, ours_cpu = o[f"{mode}_raw_cpu_us"], o[f"{mode}_{name}_cpu_us"]
                    print(
                        f"{mode:5} per call, {N_DOCUMENTS} {label} docs ({size:.0f} KB), HTTPReranker with "
                        f"{encoder:6}: client CPU {ours_cpu:5.0f} µs vs raw httpx {raw_cpu:5.0f} µs, overhead "
                        f"{ours_cpu - raw_cpu:4.0f} µs (goal <= 300 µs) | wall {ours:5.0f} µs vs {raw:5.0f} µs, "
                        f"{ours - raw:+5.0f} µs ({args.rounds} interleaved rounds, medians)"
                    )

    with emulator_process(0.3) as base_url:
        first = first_calls(base_url, args.first_call_rounds)
    print(
        f"first calls on a fresh loop (asyncio.run of 2 concurrent calls, 0.3 s server): raw httpx "
        f"{first['raw']:.3f} s | HTTPReranker {first['ours']:.3f} s = {first['ours'] / first['raw']:.2f}x "
        f"(goal <= 1.00x, {args.first_call_rounds} interleaved rounds, medians)"
    )

    with (
        emulator_process(0.02, one_at_a_time=True) as a,
        emulator_process(0.02, one_at_a_time=True) as b,
        emulator_process(0.02, one_at_a_time=True) as c,
    ):
        r = replicas([a, b, c], args.replica_calls)
    print(
        f"replicas, {args.replica_calls} concurrent calls, servers answering one request at a time in 20 ms: "
        f"one {r['one_s']:.3f} s | three {r['many_s']:.3f} s = {r['one_s'] / r['many_s']:.2f}x the throughput "
        f"(goal >= 2.70x, medians of 3 interleaved)"
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
