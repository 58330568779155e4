"""`ClientPool`: the httpx clients one reranker sends with, leased per call so `close()` never cuts a call short.

One sync client serves every thread. Async clients belong to the event loop that opened their connections, so
each loop gets its own set (several small pools rather than one big one: httpcore's async pool scans every
connection for every queued request). Clients passed in by the caller are used as they are and never closed.
Every client the pool builds shares one SSL context: building one reads the CA bundle, which costs more than a
request, and an app that calls `asyncio.run` per request would otherwise pay it on every call.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import ssl
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import TimeoutError as FutureTimeoutError
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import httpx

from rerank_core.http.deadline import deadline_client

ASYNC_POOL_SHARD = 8
"""Connections per owned AsyncClient. httpcore's async pool scans every connection for every queued request, so
one pool of 64 costs more CPU than the network; several pools of 8, one per block of slots, keep that flat."""

ClientT = TypeVar("ClientT", httpx.Client, list[httpx.AsyncClient])


@dataclass(eq=False)
class _Lease(Generic[ClientT]):
    """A pooled client and the calls using it: `close()` during a call lets the call finish on it."""

    client: ClientT
    users: int = 0
    retired: bool = False


class ClientPool:
    def __init__(
        self,
        max_connections: int,
        *,
        http_client: httpx.Client | None = None,
        async_http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.max_connections = max_connections
        self._given_client = http_client
        self._given_async_client = async_http_client
        self._ssl: ssl.SSLContext | None = None
        self._forget()

    def _forget(self) -> None:
        self._lock = threading.Lock()
        self._sync_lease: _Lease[httpx.Client] | None = None
        self._async_leases: dict[asyncio.AbstractEventLoop, _Lease[list[httpx.AsyncClient]]] = {}
        self._closing: set[asyncio.Task[None]] = set()

    def after_fork_in_child(self) -> None:
        """Forget the parent's clients and lock. Their sockets are the parent's too, so they are abandoned, not
        closed (closing would end the parent's connections: a FIN, a TLS close_notify)."""
        self._forget()

    @property
    def ssl_context(self) -> ssl.SSLContext:
        with self._lock:
            if self._ssl is None:
                self._ssl = httpx.create_ssl_context()
            return self._ssl

    def _limits(self, size: int) -> httpx.Limits:
        # Exactly as many connections as slots that lead to this client: a request never waits in httpx's pool.
        return httpx.Limits(max_connections=size, max_keepalive_connections=size)

    @contextlib.contextmanager
    def sync_client(self) -> Iterator[httpx.Client]:
        if self._given_client is not None:
            yield self._given_client
            return
        context = self.ssl_context
        with self._lock:
            if self._sync_lease is None:
                self._sync_lease = _Lease(deadline_client(self._limits(self.max_connections), context))
            lease = self._sync_lease
            lease.users += 1
        try:
            yield lease.client
        finally:
            if self._release(lease):
                lease.client.close()

    @contextlib.asynccontextmanager
    async def async_clients(self) -> AsyncIterator[list[httpx.AsyncClient]]:
        """The running loop's clients: slot `s` of the in-flight limit uses `clients[s // ASYNC_POOL_SHARD]`."""
        if self._given_async_client is not None:
            yield [self._given_async_client]
            return
        loop = asyncio.get_running_loop()
        context = self.ssl_context
        with self._lock:
            lease = self._async_leases.get(loop)
            if lease is None:
                # Forget clients of loops that are gone (e.g. an earlier `asyncio.run`); they cannot be reused.
                for stale in [old for old in self._async_leases if old.is_closed()]:
                    del self._async_leases[stale]
                shards = math.ceil(self.max_connections / ASYNC_POOL_SHARD)
                size = min(self.max_connections, ASYNC_POOL_SHARD)
                clients = [
                    httpx.AsyncClient(limits=self._limits(size), follow_redirects=False, verify=context)
                    for _ in range(shards)
                ]
                lease = self._async_leases[loop] = _Lease(clients)
            lease.users += 1
        try:
            yield lease.client
        finally:
            if self._release(lease):
                await _aclose_all(lease.client)

    def _release(self, lease: _Lease[Any]) -> bool:
        """One call is done with `lease`: True if it was retired meanwhile and this was its last user."""
        with self._lock:
            lease.users -= 1
            return lease.retired and lease.users == 0

    def _retire(self, lease: _Lease[Any]) -> bool:
        """Under the lock: no new call gets `lease`; True if nobody is using it (close it now)."""
        lease.retired = True
        return lease.users == 0

    def close(self) -> None:
        """Close the clients this pool built (never ones passed in); calls still running finish first."""
        with self._lock:
            sync_lease, self._sync_lease = self._sync_lease, None
            sync_idle = sync_lease is not None and self._retire(sync_lease)
            idle_async = [(loop, lease) for loop, lease in self._async_leases.items() if self._retire(lease)]
            self._async_leases.clear()
        if sync_lease is not None and sync_idle:
            sync_lease.client.close()
        for loop, lease in idle_async:
            self._close_on_loop(loop, lease.client)

    async def aclose(self) -> None:
        with self._lock:
            lease = self._async_leases.pop(asyncio.get_running_loop(), None)
            idle = lease is not None and self._retire(lease)
        if lease is not None and idle:
            await _aclose_all(lease.client)
        self.close()

    def _close_on_loop(self, loop: asyncio.AbstractEventLoop, clients: list[httpx.AsyncClient]) -> None:
        """Close an AsyncClient from sync code, on the loop its connections belong to, if that loop still lives."""
        if loop.is_closed():
            return  # its connections died with the loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            task = loop.create_task(_aclose_all(clients))
            self._closing.add(task)  # keep a reference until done
            task.add_done_callback(self._closing.discard)
        elif loop.is_running():  # in another thread: close there, and wait a little for it
            with contextlib.suppress(FutureTimeoutError):
                asyncio.run_coroutine_threadsafe(_aclose_all(clients), loop).result(timeout=5)
        else:
            loop.run_until_complete(_aclose_all(clients))


async def _aclose_all(clients: list[httpx.AsyncClient]) -> None:
    for client in clients:
        await client.aclose()
