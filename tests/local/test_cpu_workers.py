"""The torch engine's CPU default: single-threaded workers that score batches side by side (issue 13.6)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from rerank_core import TorchCrossEncoder

WORKER_PREFIX = "rerank-torch-worker"


@pytest.fixture
def two_torch_threads() -> Iterator[None]:
    """The caller runs torch on 2 threads, as on the 2-core CI machine, whatever this machine has."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


class Recording(TorchCrossEncoder):
    """Records the thread that scored each batch and the torch thread count it ran with."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[tuple[str, int]] = []

    def _forward(self, network: Any, inputs: Any, num_labels: int) -> list[float]:
        import torch

        self.seen.append((threading.current_thread().name, torch.get_num_threads()))
        return super()._forward(network, inputs, num_labels)


def worker_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith(WORKER_PREFIX)]


def test_batches_run_on_single_threaded_workers_and_score_like_torch_threads(
    tiny_cross_encoder: str, query: str, docs: list[str], two_torch_threads: None
) -> None:
    import torch

    engine = Recording(tiny_cross_encoder, device="cpu", batch_size=2)
    got = engine.predict_logits(query, docs)
    assert len(engine.seen) == 4, "7 documents in batches of 2"
    assert all(name.startswith(WORKER_PREFIX) for name, _ in engine.seen), engine.seen
    assert {threads for _, threads in engine.seen} == {1}

    assert torch.get_num_threads() == 2, "the caller's own torch threads are left alone"
    seen_by_new_thread: list[int] = []
    newcomer = threading.Thread(target=lambda: seen_by_new_thread.append(torch.get_num_threads()))
    newcomer.start()
    newcomer.join()
    assert seen_by_new_thread == [2], "threads new to torch still start with the caller's count, not the workers' 1"

    want = TorchCrossEncoder(tiny_cross_encoder, device="cpu", batch_size=2, num_threads=2).predict_logits(query, docs)
    assert max(abs(a - b) for a, b in zip(got, want, strict=True)) < 1e-5
    assert sorted(range(len(docs)), key=lambda i: -got[i]) == sorted(range(len(docs)), key=lambda i: -want[i])
    engine.close()


def test_one_batch_runs_on_the_callers_thread_with_torchs_threads(
    tiny_cross_encoder: str, query: str, two_torch_threads: None
) -> None:
    engine = Recording(tiny_cross_encoder, device="cpu")
    engine.rerank(query, ["Paris is the capital of France"])
    assert engine.seen == [(threading.current_thread().name, 2)]
    engine.close()


def test_num_threads_keeps_every_batch_on_the_callers_thread(
    tiny_cross_encoder: str, query: str, docs: list[str], two_torch_threads: None
) -> None:
    engine = Recording(tiny_cross_encoder, device="cpu", batch_size=2, num_threads=2)
    engine.rerank(query, docs)
    assert {name for name, _ in engine.seen} == {threading.current_thread().name}
    assert {threads for _, threads in engine.seen} == {2}


def test_concurrent_callers_share_the_workers_and_get_their_own_results(
    tiny_cross_encoder: str, docs: list[str], two_torch_threads: None
) -> None:
    engine = TorchCrossEncoder(tiny_cross_encoder, device="cpu", batch_size=2)
    sequential = TorchCrossEncoder(tiny_cross_encoder, device="cpu", batch_size=2, num_threads=2)
    queries = [f"query number {i} about {docs[i % len(docs)][:20]}" for i in range(16)]
    want = [sequential.predict_logits(q, docs) for q in queries]
    with ThreadPoolExecutor(8) as callers:
        got = list(callers.map(lambda q: engine.predict_logits(q, docs), queries))
    for mine, theirs in zip(got, want, strict=True):
        assert max(abs(a - b) for a, b in zip(mine, theirs, strict=True)) < 1e-5
    engine.close()


def test_close_stops_the_workers_and_the_next_call_starts_new_ones(
    tiny_cross_encoder: str, query: str, docs: list[str], two_torch_threads: None
) -> None:
    engine = Recording(tiny_cross_encoder, device="cpu", batch_size=2)
    before = set(worker_threads())  # other tests' engines may still have theirs
    engine.warm_up()
    started = [thread for thread in worker_threads() if thread not in before]
    assert len(started) == 2
    engine.close()
    for thread in started:
        thread.join(timeout=10)
    assert not any(thread.is_alive() for thread in started), "closed workers exit"

    assert len(engine.rerank(query, docs).results) == len(docs)
    assert all(name.startswith(WORKER_PREFIX) for name, _ in engine.seen)
    engine.close()


def test_workers_inherited_through_a_fork_are_replaced(
    tiny_cross_encoder: str, query: str, docs: list[str], two_torch_threads: None
) -> None:
    """A forked child (gunicorn --preload, multiprocessing's fork) has the engine but not the parent's threads.
    Simulated: the workers are marked as made by another process id."""
    engine = Recording(tiny_cross_encoder, device="cpu", batch_size=2)
    engine.warm_up()
    inherited = engine._workers
    assert inherited is not None
    inherited._pid = -1  # what alive() sees in a child

    want = TorchCrossEncoder(tiny_cross_encoder, device="cpu", num_threads=2).predict_logits(query, docs)
    got = engine.predict_logits(query, docs)
    assert max(abs(a - b) for a, b in zip(got, want, strict=True)) < 1e-5
    assert engine._workers is not inherited
    assert all(name.startswith(WORKER_PREFIX) for name, _ in engine.seen)
    inherited._pid = os.getpid()
    inherited.close()
    engine.close()
