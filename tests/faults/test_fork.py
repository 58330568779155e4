"""A reranker used before `os.fork()` (gunicorn --preload, multiprocessing, Celery prefork) works in both processes.

Parent and child must not share pooled keep-alive sockets (answers would cross between the processes), and the
child must not inherit the parent's in-flight slots (calls in flight at the fork never finish in the child, so
their slots would be lost for good). The emulator scores every document with a number taken from the query, and
every query is unique to its process and call, so a crossed answer is caught by its score.
"""

from __future__ import annotations

import asyncio
import os
import select
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest

from rerank_core import HTTPReranker
from tests.support.fixtures import StartEmulator
from tests.support.transport import MODES, Mode, make_reranker

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() exists only on POSIX")
CALLS = 40
CONNECTIONS = 4
CHILD_BOUND = 60  # seconds; the child is killed by its alarm past this, which the parent reports as a hang


class Scorer:
    """Scores `q <token>` as token / 1e6; a `hold` query waits (server side) until released, holding its slot."""

    def __init__(self) -> None:
        self.arrived = threading.Semaphore(0)
        self.release = threading.Event()

    def __call__(self, query: str, text: str) -> float:
        word, token = query.split()
        if word == "hold":
            self.arrived.release()
            self.release.wait(30)
        return int(token) / 1e6


def check(response: Any, token: int) -> None:
    scores = {r.relevance_score for r in response.results}
    assert scores == {token / 1e6}, f"call {token} got the scores {scores}: another process's answer"


def sync_calls(reranker: HTTPReranker, base: int) -> None:
    def one(i: int) -> None:
        check(reranker.rerank(f"q {base + i}", ["a", "b"]), base + i)

    with ThreadPoolExecutor(CONNECTIONS) as pool:
        list(pool.map(one, range(CALLS)))


async def async_calls(reranker: HTTPReranker, base: int) -> None:
    async def one(i: int) -> None:
        check(await reranker.arerank(f"q {base + i}", ["a", "b"]), base + i)

    await asyncio.gather(*(one(i) for i in range(CALLS)))


@contextmanager
def loop_thread() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield loop
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def run_child(write_end: int, work: Callable[[], None]) -> None:
    """In the child: do `work`, report through the pipe, and leave without running the parent's teardown."""
    signal.alarm(CHILD_BOUND)  # a hang ends the child (the parent sees no report) instead of the test run
    status = 1
    try:
        work()
        report = b"ok"
        status = 0
    except BaseException:
        report = traceback.format_exc().encode()
    os.write(write_end, report[:60_000])
    os._exit(status)


def child_report(pid: int, read_end: int) -> str:
    ready, _, _ = select.select([read_end], [], [], CHILD_BOUND + 10)
    chunks = []
    while ready:
        chunk = os.read(read_end, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.waitpid(pid, 0)
    return b"".join(chunks).decode() or "the child hung (killed by its alarm) or died without a report"


@pytest.mark.parametrize("mode", MODES)
def test_parent_and_child_each_get_their_own_answers_after_fork(start_emulator: StartEmulator, mode: Mode) -> None:
    scorer = Scorer()
    emu = start_emulator("generic", scorer=scorer)
    reranker = make_reranker(emu, max_connections=CONNECTIONS, timeout=20.0, max_retries=0)
    # Sync: two calls in flight at the fork and two idle keep-alive connections in the pool (the ones answers cross
    # on). Async: every slot in flight at the fork (the child would wait for them forever).
    held = CONNECTIONS // 2 if mode == "sync" else CONNECTIONS
    with loop_thread() as loop:

        def hold(i: int) -> Any:
            if mode == "sync":
                return reranker.rerank(f"hold {900_000 + i}", ["a"])
            return asyncio.run_coroutine_threadsafe(reranker.arerank(f"hold {900_000 + i}", ["a"]), loop).result()

        with ThreadPoolExecutor(CONNECTIONS) as warm:  # fill the pool with open keep-alive connections
            if mode == "sync":
                list(warm.map(lambda i: check(reranker.rerank(f"q {i}", ["a"]), i), range(CONNECTIONS)))
            else:
                asyncio.run_coroutine_threadsafe(async_calls(reranker, 0), loop).result()
        holders = ThreadPoolExecutor(held)
        pending = [holders.submit(hold, i) for i in range(held)]
        for _ in range(held):
            assert scorer.arrived.acquire(timeout=20)

        read_end, write_end = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child
            os.close(read_end)
            if mode == "sync":
                run_child(write_end, lambda: sync_calls(reranker, 200_000))
            else:
                run_child(write_end, lambda: asyncio.run(async_calls(reranker, 200_000)))
        os.close(write_end)
        try:
            scorer.release.set()
            for job in pending:
                job.result(timeout=30)
            holders.shutdown()
            if mode == "sync":
                sync_calls(reranker, 100_000)
            else:
                asyncio.run_coroutine_threadsafe(async_calls(reranker, 100_000), loop).result(timeout=60)
        finally:
            report = child_report(pid, read_end)
            os.close(read_end)
        assert report == "ok", report
        # the parent's own pool still works after the child came and went
        if mode == "sync":
            check(reranker.rerank("q 300000", ["a"]), 300_000)
        else:
            check(asyncio.run_coroutine_threadsafe(reranker.arerank("q 300000", ["a"]), loop).result(30), 300_000)
            asyncio.run_coroutine_threadsafe(reranker.aclose(), loop).result(30)
    reranker.close()


def test_a_forked_child_does_not_keep_a_closed_reranker_alive() -> None:
    """The fork hook holds rerankers weakly: one the program dropped is gone, not kept for the next fork."""
    import gc
    import weakref

    reranker = make_reranker("http://127.0.0.1:9", max_retries=0)
    ref = weakref.ref(reranker)
    del reranker
    gc.collect()
    assert ref() is None
