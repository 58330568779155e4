"""1,000 concurrent calls on one `HTTPReranker`: do they queue fairly for the shared pool and finish on time?

A loopback emulator (generic dialect, in a child process) answers every request after a fixed latency. With a
pool of P connections, no client can do better than `ceil(requests / P) x latency`: that is the named baseline
("ideal"). A raw `httpx.AsyncClient` limited to P requests by a semaphore, doing the same POSTs, is measured in
the same rounds as the floor a hand-written client reaches. Contenders, interleaved round by round:

- `async`: 1,000 concurrent `arerank` calls of 3 documents (1,000 requests);
- `threads`: 1,000 threads each calling `rerank` once;
- `async x4` / `threads x4`: the same, but every call splits into 4 batches (4,000 requests);
- `raw httpx`: 1,000 POSTs through an `AsyncClient` + `asyncio.Semaphore(P)`.

Goal: every contender within 1.2x of its ideal, with zero failures.

    python -m benchmarks.load [--rounds 3] [--pool 64] [--latency 0.1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import threading
import time
from collections.abc import Callable

import httpx

from benchmarks.http_overhead import emulator_process, machine
from rerank_core import HTTPReranker

CALLS = 1000
QUERY = "apple pie"


def documents(call: int, n: int) -> list[str]:
    return [f"apple pie {call} {j}" for j in range(n)]


def reranker(base_url: str, pool: int, per_request: int | None) -> HTTPReranker:
    return HTTPReranker(
        "generic",
        model="m",
        base_url=base_url,
        api_key="k",
        max_connections=pool,
        max_documents_per_request=per_request,
        timeout=30,
    )


def run_async(base_url: str, pool: int, batches: int) -> tuple[float, int]:
    async def go() -> tuple[float, int]:
        with reranker(base_url, pool, 1 if batches > 1 else None) as client:
            n = batches if batches > 1 else 3
            await client.arerank(QUERY, documents(-1, n))  # open the pool outside the clock, as a service would
            started = time.perf_counter()
            answers = await asyncio.gather(
                *(client.arerank(QUERY, documents(i, n)) for i in range(CALLS)), return_exceptions=True
            )
            wall = time.perf_counter() - started
            await client.aclose()
        return wall, sum(isinstance(a, BaseException) or len(a.results) != n for a in answers)

    return asyncio.run(go())


def run_threads(base_url: str, pool: int, batches: int) -> tuple[float, int]:
    n = batches if batches > 1 else 3
    failures = 0
    lock = threading.Lock()
    start = threading.Event()
    with reranker(base_url, pool, 1 if batches > 1 else None) as client:
        client.rerank(QUERY, documents(-1, n))

        def one(i: int) -> None:
            nonlocal failures
            start.wait()
            try:
                ok = len(client.rerank(QUERY, documents(i, n)).results) == n
            except Exception:
                ok = False
            if not ok:
                with lock:
                    failures += 1

        threads = [threading.Thread(target=one, args=(i,)) for i in range(CALLS)]
        for thread in threads:
            thread.start()
        started = time.perf_counter()
        start.set()
        for thread in threads:
            thread.join()
        return time.perf_counter() - started, failures


def run_raw(base_url: str, pool: int, batches: int) -> tuple[float, int]:
    url = base_url + "/v1/rerank"
    headers = {"content-type": "application/json", "authorization": "Bearer k"}

    async def go() -> tuple[float, int]:
        limits = httpx.Limits(max_connections=pool, max_keepalive_connections=pool)
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:
            gate = asyncio.Semaphore(pool)

            async def post(i: int) -> bool:
                body = json.dumps({"model": "m", "query": QUERY, "documents": documents(i, 3)}).encode()
                async with gate:
                    response = await client.post(url, content=body, headers=headers)
                return response.status_code == 200 and len(response.json()["results"]) == 3

            await post(-1)
            started = time.perf_counter()
            answers = await asyncio.gather(*(post(i) for i in range(CALLS)), return_exceptions=True)
            wall = time.perf_counter() - started
        return wall, sum(a is not True for a in answers)

    return asyncio.run(go())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pool", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.1)
    args = parser.parse_args()

    contenders: dict[str, tuple[Callable[[str, int, int], tuple[float, int]], int]] = {
        "raw httpx + semaphore": (run_raw, 1),
        "async": (run_async, 1),
        "threads": (run_threads, 1),
        "async x4 batches": (run_async, 4),
        "threads x4 batches": (run_threads, 4),
    }
    ratios: dict[str, list[float]] = {name: [] for name in contenders}
    walls: dict[str, list[float]] = {name: [] for name in contenders}
    failures = dict.fromkeys(contenders, 0)
    print(f"machine: {machine()}")
    with emulator_process(args.latency) as base_url:
        for _ in range(args.rounds):
            for name, (run, batches) in contenders.items():
                ideal = math.ceil(CALLS * batches / args.pool) * args.latency
                wall, failed = run(base_url, args.pool, batches)
                ratios[name].append(wall / ideal)
                walls[name].append(wall)
                failures[name] += failed
    print(f"{CALLS} concurrent calls, pool {args.pool}, latency {args.latency * 1000:.0f} ms, {args.rounds} rounds:")
    for name, (_, batches) in contenders.items():
        ideal = math.ceil(CALLS * batches / args.pool) * args.latency
        print(
            f"  {name:22} {statistics.median(walls[name]):6.2f} s vs ideal {ideal:5.2f} s = "
            f"{statistics.median(ratios[name]):.2f}x (median of per-round ratios; goal <= 1.20x), "
            f"failures {failures[name]}"
        )
    print(f"load average after: {machine().rsplit('load average ', 1)[1]}")


if __name__ == "__main__":
    main()
