"""`InFlightLimit`: a fair (first come, first served) cap on requests in flight, shared by threads and event loops.

One reranker serves sync threads and async tasks on any number of event loops at once. A per-call semaphore
cannot stop 1,000 concurrent calls from opening 1,000 connections, and httpx's own pool wait counts against the
request timeout. So every request first takes a slot here, in arrival order, *before* its timeout starts; a
released slot is handed straight to the oldest waiter, so nobody can overtake it.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field


@dataclass(eq=False)
class _Waiter:
    loop: asyncio.AbstractEventLoop | None
    """None for a thread."""
    future: asyncio.Future[None] | None = None
    event: threading.Event = field(default_factory=threading.Event)
    granted: bool = False


class InFlightLimit:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._used = 0
        self._waiters: deque[_Waiter] = deque()
        self._lock = threading.Lock()

    @property
    def in_use(self) -> int:
        with self._lock:
            return self._used

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Wait (blocking this thread) for a slot, keep it for the block."""
        with self._lock:
            waiter = self._take_or_queue(None)
        if waiter is not None:
            waiter.event.wait()  # only a grant wakes it: the handoff is the only way out
        try:
            yield
        finally:
            self._release()

    @asynccontextmanager
    async def ahold(self) -> AsyncIterator[None]:
        """Wait (without blocking the loop) for a slot, keep it for the block."""
        with self._lock:
            waiter = self._take_or_queue(asyncio.get_running_loop())
        if waiter is not None:
            assert waiter.future is not None
            try:
                await waiter.future
            except asyncio.CancelledError:
                with self._lock:
                    granted = waiter.granted
                    if not granted:
                        self._waiters.remove(waiter)
                if granted:  # the slot arrived as we were cancelled: pass it on
                    self._release()
                raise
        try:
            yield
        finally:
            self._release()

    def _take_or_queue(self, loop: asyncio.AbstractEventLoop | None) -> _Waiter | None:
        """Under the lock: take a free slot (None), or queue and return the waiter."""
        if self._used < self.limit and not self._waiters:
            self._used += 1
            return None
        waiter = _Waiter(loop=loop, future=loop.create_future() if loop is not None else None)
        self._waiters.append(waiter)
        return waiter

    def _release(self) -> None:
        with self._lock:
            while self._waiters:
                waiter = self._waiters.popleft()
                if waiter.loop is None:
                    waiter.granted = True
                    waiter.event.set()
                    return
                try:
                    waiter.loop.call_soon_threadsafe(_grant, waiter.future)
                except RuntimeError:  # its loop is closed: nobody is waiting there any more
                    continue
                waiter.granted = True
                return
            self._used -= 1


def _grant(future: asyncio.Future[None] | None) -> None:
    if future is not None and not future.done():
        future.set_result(None)
