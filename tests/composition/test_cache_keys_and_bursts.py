"""Issue 13.2: the cache keys on exactly what is scored; identical in-flight misses are fetched once; the sqlite
store holds under two processes at once."""

from __future__ import annotations

import asyncio
import gc
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rerank_core import CachingReranker, Document, SQLiteScoreCache, load_reranker
from rerank_core.cache import Pending, _SingleFlight
from tests.support.emulator import ProviderEmulator, overlap_score
from tests.support.fixtures import StartEmulator

ROOT = Path(__file__).resolve().parents[2]


def cached(emu: ProviderEmulator, provider: str = "generic", **extra: object) -> CachingReranker:
    reranker = load_reranker(
        {"provider": provider, "model": "m", "base_url": emu.base_url, "api_key": "k", "cache": True, **extra}
    )
    assert isinstance(reranker, CachingReranker)
    return reranker


def test_rank_fields_metadata_is_part_of_the_key(start_emulator: StartEmulator) -> None:
    emu = start_emulator("cohere-v1")
    reranker = cached(emu, "cohere-v1", options={"rank_fields": ["title", "text"]})
    on_topic = Document(text="same body", metadata={"title": "capital of france", "shelf": 1})
    off_topic = Document(text="same body", metadata={"title": "bread recipes", "shelf": 1})

    first = reranker.rerank("capital of france", [on_topic]).results[0].relevance_score
    second = reranker.rerank("capital of france", [off_topic]).results[0].relevance_score

    assert emu.request_count == 2  # same text, different scored metadata: a miss, not the first score
    assert first > second
    moved = Document(text="same body", metadata={"title": "capital of france", "shelf": 2})  # not sent
    assert reranker.rerank("capital of france", [moved]).cache.hits == 1  # type: ignore[union-attr]
    assert emu.request_count == 2


def test_send_metadata_is_part_of_the_key(start_emulator: StartEmulator) -> None:
    emu = start_emulator("generic")
    reranker = cached(emu, options={"send_metadata": ["lang"]})
    reranker.rerank("q", [Document(text="t", metadata={"lang": "en", "other": 1})])
    reranker.rerank("q", [Document(text="t", metadata={"lang": "fr", "other": 1})])
    assert emu.request_count == 2
    reranker.rerank("q", [Document(text="t", metadata={"lang": "fr", "other": 2})])  # "other" is never sent
    assert emu.request_count == 2


def test_without_metadata_on_the_wire_the_key_is_the_text(start_emulator: StartEmulator) -> None:
    emu = start_emulator("generic")
    reranker = cached(emu)
    reranker.rerank("q", [Document(text="t", metadata={"lang": "en"})])
    assert reranker.rerank("q", [Document(text="t", metadata={"lang": "fr"})]).cache.hits == 1  # type: ignore[union-attr]
    assert emu.request_count == 1


def test_duplicates_within_one_call_are_sent_once(start_emulator: StartEmulator) -> None:
    emu = start_emulator("generic")
    response = cached(emu).rerank("capital", ["capital city", "bread", "capital city"])
    assert emu.requests[0].body["documents"] == ["capital city", "bread"]
    assert sorted(r.index for r in response.results) == [0, 1, 2]
    assert {r.index: r.relevance_score for r in response.results}[2] == overlap_score("capital", "capital city")


class CountingSingleFlight(_SingleFlight):
    """Signals once `expected` calls have claimed their misses (each then either fetches or waits)."""

    def __init__(self, expected: int) -> None:
        super().__init__()
        self.expected = expected
        self.claims = 0
        self.all_claimed = threading.Event()

    def claim(self, keys: Iterable[str], *, wait: bool) -> tuple[list[str], Pending, Pending]:
        result = super().claim(keys, wait=wait)
        with self._lock:
            self.claims += 1
            if self.claims == self.expected:
                self.all_claimed.set()
        return result


def gated(emu_gate: threading.Event) -> Callable[[str, str], float]:
    def score(query: str, text: str) -> float:
        emu_gate.wait(timeout=30)  # the provider answers only once every caller has asked
        return overlap_score(query, text)

    return score


def test_a_burst_of_identical_calls_sends_one_request(start_emulator: StartEmulator) -> None:
    gate = threading.Event()
    emu = start_emulator("generic", scorer=gated(gate))
    reranker = cached(emu, max_retries=0)
    counting = CountingSingleFlight(expected=16)
    reranker._single_flight = counting
    docs = ["capital of france", "bread", "capital"]

    with ThreadPoolExecutor(max_workers=16) as pool:
        futures = [pool.submit(reranker.rerank, "capital of france", docs) for _ in range(16)]
        assert counting.all_claimed.wait(timeout=30)
        gate.set()
        responses = [future.result(timeout=30) for future in futures]

    assert emu.request_count == 1
    want = {i: overlap_score("capital of france", text) for i, text in enumerate(docs)}
    assert all({r.index: r.relevance_score for r in response.results} == want for response in responses)


def test_overlapping_bursts_send_each_distinct_miss_once(start_emulator: StartEmulator) -> None:
    gate = threading.Event()
    emu = start_emulator("generic", scorer=gated(gate))
    reranker = cached(emu, max_retries=0)
    counting = CountingSingleFlight(expected=12)
    reranker._single_flight = counting
    sets = [["a capital", "b capital"], ["b capital", "c capital"], ["c capital", "a capital", "d"]]

    with ThreadPoolExecutor(max_workers=12) as pool:
        futures = [pool.submit(reranker.rerank, "capital", sets[i % 3]) for i in range(12)]
        assert counting.all_claimed.wait(timeout=30)
        gate.set()
        responses = [future.result(timeout=30) for future in futures]

    sent = [text for request in emu.requests for text in request.body["documents"]]
    assert sorted(sent) == ["a capital", "b capital", "c capital", "d"]
    for i, response in enumerate(responses):
        assert [r.document.text for r in sorted(response.results, key=lambda r: r.index)] == sets[i % 3]


async def test_an_async_burst_of_identical_calls_sends_one_request(start_emulator: StartEmulator) -> None:
    gate = threading.Event()
    emu = start_emulator("generic", scorer=gated(gate))
    reranker = cached(emu, max_retries=0)
    counting = CountingSingleFlight(expected=50)
    reranker._single_flight = counting
    docs = ["capital of france", "bread"]

    calls = [asyncio.ensure_future(reranker.arerank("capital", docs)) for _ in range(50)]
    assert await asyncio.to_thread(counting.all_claimed.wait, 30)
    gate.set()
    responses = await asyncio.gather(*calls)

    assert emu.request_count == 1
    assert all([r.index for r in response.results] == [0, 1] for response in responses)
    await reranker.aclose()


async def test_a_cancelled_leader_hands_its_keys_to_the_waiters(start_emulator: StartEmulator) -> None:
    gate = threading.Event()
    emu = start_emulator("generic", scorer=gated(gate))
    reranker = cached(emu, max_retries=0)
    counting = CountingSingleFlight(expected=2)
    reranker._single_flight = counting

    leader = asyncio.ensure_future(reranker.arerank("capital", ["capital city"]))
    waiter = asyncio.ensure_future(reranker.arerank("capital", ["capital city"]))
    assert await asyncio.to_thread(counting.all_claimed.wait, 30)
    leader.cancel()
    gate.set()
    response = await waiter
    assert response.results[0].relevance_score == overlap_score("capital", "capital city")
    assert leader.cancelled()
    await reranker.aclose()


def test_a_provider_error_reaches_every_waiter(start_emulator: StartEmulator) -> None:
    from rerank_core import ProviderError
    from tests.support.emulator import Fault

    gate = threading.Event()
    emu = start_emulator("generic", scorer=gated(gate))
    emu.fail_always(Fault(status=500))
    reranker = cached(emu, max_retries=0)
    counting = CountingSingleFlight(expected=4)
    reranker._single_flight = counting
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(reranker.rerank, "q", ["a"]) for _ in range(4)]
        assert counting.all_claimed.wait(timeout=30)
        gate.set()
        errors = [future.exception(timeout=30) for future in futures]
    assert all(isinstance(error, ProviderError) for error in errors)
    assert emu.request_count == 1


CHILD = """
import sys
from concurrent.futures import ThreadPoolExecutor
from rerank_core import load_reranker
from tests.support.emulator import overlap_score

base_url, db, worker = sys.argv[1], sys.argv[2], int(sys.argv[3])
reranker = load_reranker({"provider": "generic", "model": "m", "base_url": base_url, "api_key": "k",
                          "max_retries": 0, "cache": "sqlite:///" + db})
queries = [f"capital {i % 6} france" for i in range(60)]

def one(i):
    query = queries[i]
    docs = [f"doc {worker}-{i} capital", f"shared {i % 6} france", f"{i % 6} other", "capital france"]
    response = reranker.rerank(query, docs)
    got = {r.index: r.relevance_score for r in response.results}
    assert got == {j: overlap_score(query, d) for j, d in enumerate(docs)}, (query, got)
    assert [r.document.text for r in sorted(response.results, key=lambda r: r.index)] == docs
    return response.cache.hits

with ThreadPoolExecutor(max_workers=8) as pool:
    hits = sum(pool.map(one, range(60)))
print("ok", hits)
"""


def test_two_processes_share_one_sqlite_file_under_load(start_emulator: StartEmulator, tmp_path: Path) -> None:
    emu = start_emulator("generic")
    db = tmp_path / "shared.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, emu.base_url, str(db), str(worker)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for worker in range(2)
    ]
    outputs = [child.communicate(timeout=120) for child in children]
    for child, (out, err) in zip(children, outputs, strict=True):
        assert child.returncode == 0, err[-2000:]
        assert out.startswith("ok ")
    total_hits = sum(int(out.split()[1]) for out, _ in outputs)
    assert total_hits > 0  # the processes read each other's (and their own) scores
    # Every distinct (query, document) pair is stored once: 2 x 60 own documents, and per query (6) one shared,
    # one "other" and one common document.
    with sqlite3.connect(db) as check:
        assert check.execute("SELECT COUNT(*) FROM scores").fetchone() == (2 * 60 + 3 * 6,)


async def test_a_sync_call_on_the_event_loop_thread_never_waits_for_an_async_one(start_emulator: StartEmulator) -> None:
    gate, first = threading.Event(), threading.Event()

    def score(query: str, text: str) -> float:
        if not first.is_set():  # only the async call's request is held back
            first.set()
            gate.wait(timeout=30)
        return overlap_score(query, text)

    emu = start_emulator("generic", scorer=score)
    reranker = cached(emu, max_retries=0)
    leader = asyncio.ensure_future(reranker.arerank("capital", ["capital city"]))
    assert await asyncio.to_thread(first.wait, 30)  # the async call's request is at the provider
    # Blocking on the async call from the loop's own thread would deadlock; this call fetches for itself.
    mine = reranker.rerank("capital", ["capital city"])
    gate.set()
    theirs = await leader
    assert mine.results[0].relevance_score == theirs.results[0].relevance_score
    assert emu.request_count == 2
    await reranker.aclose()


def open_fds() -> int:
    gc.collect()  # sockets of earlier tests that are already unreachable
    return len(os.listdir("/proc/self/fd"))


async def test_building_and_closing_sqlite_cached_rerankers_leaks_no_file(
    start_emulator: StartEmulator, tmp_path: Path
) -> None:
    emu = start_emulator("generic")
    config = {
        "provider": "generic",
        "model": "m",
        "base_url": emu.base_url,
        "api_key": "k",
        "cache": f"sqlite:///{tmp_path / 'fd.db'}",
        "fallback": [{"provider": "generic", "model": "m2", "base_url": emu.base_url, "api_key": "k"}],
    }
    load_reranker(config).close()  # warm-up: first imports, the emulator's first connection
    before = open_fds()
    for _ in range(5):
        with load_reranker(config) as reranker:
            reranker.rerank("q", ["a", "b"])
        async with load_reranker(config) as areranker:
            await areranker.arerank("q", ["a", "c"])
    assert open_fds() <= before  # each leaked sqlite connection would hold 1-3 files (db, -wal, -shm)
    store = SQLiteScoreCache(tmp_path / "mine.db")
    CachingReranker(load_reranker(config | {"cache": False, "fallback": []}), store).close()
    assert store.get_many(["x"]) == {}  # a store passed in is not closed by the reranker
    store.close()
