"""`InFlightLimit`: a fair (first come, first served) cap on requests in flight, shared by threads and event loops.

One reranker serves sync threads and async tasks on any number of event loops at once. A per-call semaphore
cannot stop 1,000 concurrent calls from opening 1,000 connections, and httpx's own pool wait counts against the
request timeout. So every request first takes a slot here, in arrival order, *before* its timeout starts; a
released slot is handed straight to the oldest waiter, so nobody can overtake it. Slots are numbered
(0 .. limit - 1), so a caller can tie each to a connection of its own.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass


@dataclass(eq=False)
class _Waiter:
    loop: asyncio.AbstractEventLoop | None
    """None for a thread."""
    future: asyncio.Future[None] | None = None
    event: threading.Event | None = None
    granted: bool = False
    slot: int = -1


class InFlightLimit:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._free = list(range(limit - 1, -1, -1))  # a stack: the most recently used connection goes out again
        self._waiters: deque[_Waiter] = deque()
        self._lock = threading.Lock()
        self._loop_slots: dict[asyncio.AbstractEventLoop, int] = {}
        """Slots held by (or granted to) async tasks, per event loop."""

    @property
    def in_use(self) -> int:
        with self._lock:
            return self.limit - len(self._free)

    def starves(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Whether a sync call on `loop`'s own thread could wait forever for a slot: tasks of `loop` hold or wait
        for every slot. While the sync call runs, that loop is frozen, so its tasks release nothing and queue
        nothing new; any slot they do not claim is free now or held by another thread or loop, and comes round."""
        with self._lock:
            claimed = self._loop_slots.get(loop, 0) + sum(waiter.loop is loop for waiter in self._waiters)
            return claimed >= self.limit

    @contextmanager
    def hold(self) -> Iterator[int]:
        """Wait (blocking this thread) for a slot, keep it for the block; yields its number."""
        with self._lock:
            taken = self._take_or_queue(None)
        if isinstance(taken, _Waiter):
            assert taken.event is not None
            taken.event.wait()  # only a grant wakes it: the handoff is the only way out
            taken = taken.slot
        try:
            yield taken
        finally:
            self._release(taken)

    @asynccontextmanager
    async def ahold(self) -> AsyncIterator[int]:
        """Wait (without blocking the loop) for a slot, keep it for the block; yields its number."""
        loop = asyncio.get_running_loop()
        with self._lock:
            taken = self._take_or_queue(loop)
            if not isinstance(taken, _Waiter):
                self._count(loop, 1)
        if isinstance(taken, _Waiter):
            assert taken.future is not None
            try:
                await taken.future
            except asyncio.CancelledError:
                with self._lock:
                    granted = taken.granted
                    if not granted:
                        self._waiters.remove(taken)
                if granted:  # the slot arrived as we were cancelled: pass it on
                    self._release(taken.slot, loop)
                raise
            taken = taken.slot
        try:
            yield taken
        finally:
            self._release(taken, loop)

    def _take_or_queue(self, loop: asyncio.AbstractEventLoop | None) -> int | _Waiter:
        """Under the lock: a free slot's number, or a waiter queued for the next one."""
        if self._free and not self._waiters:
            return self._free.pop()
        waiter = _Waiter(loop=loop)
        if loop is None:
            waiter.event = threading.Event()
        else:
            waiter.future = loop.create_future()
        self._waiters.append(waiter)
        return waiter

    def _count(self, loop: asyncio.AbstractEventLoop, change: int) -> None:
        """Under the lock."""
        held = self._loop_slots.get(loop, 0) + change
        if held > 0:
            self._loop_slots[loop] = held
        else:
            self._loop_slots.pop(loop, None)

    def _release(self, slot: int, holder: asyncio.AbstractEventLoop | None = None) -> None:
        running = _running_loop()
        with self._lock:
            if holder is not None:
                self._count(holder, -1)
            while self._waiters:
                waiter = self._waiters.popleft()
                waiter.slot = slot
                if waiter.loop is None:
                    assert waiter.event is not None
                    waiter.granted = True
                    waiter.event.set()
                    return
                if waiter.loop is running:  # same loop, same thread: grant now, without waking the loop's selector
                    _grant(waiter.future)
                else:
                    try:
                        waiter.loop.call_soon_threadsafe(_grant, waiter.future)
                    except RuntimeError:  # its loop is closed: nobody is waiting there any more
                        continue
                waiter.granted = True
                self._count(waiter.loop, 1)
                return
            self._free.append(slot)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:  # a thread without a loop
        return None


def _grant(future: asyncio.Future[None] | None) -> None:
    if future is not None and not future.done():
        future.set_result(None)
