"""Single-threaded torch workers that score whole batches side by side on CPU (the torch engine's default there).

torch splits every operation evenly over its OpenMP threads and waits for the slowest. On a CPU shared with
another busy process, the thread that shares its core sets the pace of every operation. Batches are independent,
so one batch per core on one torch thread each removes the waiting, and on an idle machine it is as fast as
torch's own threads (benchmarks/local_threads.py; figures in docs/benchmarks.md).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")
START_TIMEOUT = 30.0


def openmp_backend() -> bool:
    """Whether torch's thread count is per thread (its OpenMP backend, the default build), which the workers need."""
    import torch

    return "parallel backend: OpenMP" in torch.__config__.parallel_info()


def single_threaded() -> None:
    import torch

    torch.get_num_threads()  # a thread's first torch call sets its count from the process default: make that now,
    torch.set_num_threads(1)  # so that the default the caller restores later does not replace this one


class TorchBatchWorkers:
    """`count` threads, each running torch with one thread of its own, started now. Not usable after a fork (the
    threads stay in the parent): check `alive()` first."""

    def __init__(self, count: int) -> None:
        import torch

        caller_threads = torch.get_num_threads()
        ready = threading.Barrier(count + 1, timeout=START_TIMEOUT)
        self.count = count
        self._pid = os.getpid()
        self._pool = ThreadPoolExecutor(count, thread_name_prefix="rerank-torch-worker", initializer=single_threaded)
        try:
            for _ in range(count):  # each task blocks until all have started, so each gets a thread of its own
                self._pool.submit(ready.wait)
            ready.wait()
        except threading.BrokenBarrierError:
            self._pool.shutdown(wait=False, cancel_futures=True)
            raise
        finally:
            # set_num_threads also changed the count that threads new to torch start with: put the caller's back.
            torch.set_num_threads(caller_threads)

    def alive(self) -> bool:
        return os.getpid() == self._pid

    def map(self, run: Callable[[Item], Result], items: Iterable[Item]) -> Iterator[Result]:
        """`run` over `items` on the workers, results in input order; an exception in `run` is raised here."""
        return self._pool.map(run, items)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
