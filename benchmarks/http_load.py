"""A cheap HTTP/1.1 keep-alive load generator, so a benchmark measures the server and not its client.

An ``aiohttp.ClientSession`` spends more CPU per request than serve-sim does to answer
it (on a 2-core machine it capped ``/health`` at about 2k req/s), so a throughput figure
taken with it is the client's. Here each of ``clients`` connections is an
``asyncio.Protocol`` that writes pre-encoded request bytes and reads the reply by its
``Content-Length``: no header objects, no JSON decoding, no per-request task. Replies are
checked only for their status line (a non-200 is counted, never hidden).

The load runs in its own process (``run_load``), so the benchmark's own event loop and
imports do not share its core; ``LoadResult.cpu_s`` is that process's CPU during the run,
so a report can say what share of the machine the client took.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing as mp
import time
from collections.abc import Sequence
from typing import Any, NamedTuple


class LoadResult(NamedTuple):
    """What one load run measured."""

    requests: int
    seconds: float
    errors: int
    cpu_s: float = 0.0
    """User + system CPU seconds of the load process during the run."""

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


def encode_post(host: str, port: int, path: str, body: dict[str, object]) -> bytes:
    payload = json.dumps(body).encode()
    head = f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
    return (head + f"Content-Length: {len(payload)}\r\n\r\n").encode() + payload


def encode_get(host: str, port: int, path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()


class _Connection(asyncio.Protocol):
    """One keep-alive connection sending requests one after another until the shared budget is spent."""

    def __init__(self, shared: _Shared, offset: int) -> None:
        self.shared = shared
        self.next = offset
        self.buffer = b""
        self.need = -1  # bytes of the whole reply once its headers are read
        self.transport: Any = None  # duck-typed: uvloop's transports do not subclass asyncio.Transport
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self._send()

    def _send(self) -> None:
        shared = self.shared
        assert self.transport is not None
        if shared.left <= 0:
            self.transport.close()
            return
        shared.left -= 1
        self.transport.write(shared.requests[self.next % len(shared.requests)])
        self.next += shared.stride

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            if self.need < 0:
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = self.buffer[:end].lower()
                at = head.find(b"content-length:")
                if at < 0:
                    raise ConnectionError(f"reply without Content-Length: {head[:200]!r}")
                line_end = head.find(b"\r\n", at)
                length = int(head[at + 15 : line_end if line_end >= 0 else len(head)])
                self.need = end + 4 + length
                if not head.startswith(b"http/1.1 200"):
                    self.shared.errors += 1
            if len(self.buffer) < self.need:
                return
            self.buffer = self.buffer[self.need :]
            self.need = -1
            self.shared.completed += 1
            self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


class _Shared:
    def __init__(self, requests: Sequence[bytes], total: int, stride: int) -> None:
        self.requests = requests
        self.left = total
        self.stride = stride
        self.completed = 0
        self.errors = 0


async def load(host: str, port: int, requests: Sequence[bytes], clients: int, total: int) -> LoadResult:
    """Send ``total`` requests (cycling through ``requests``) over ``clients`` keep-alive connections."""
    loop = asyncio.get_running_loop()
    shared = _Shared(requests, total, clients)
    started, cpu = time.perf_counter(), time.process_time()
    connections = []
    for offset in range(clients):
        _, protocol = await loop.create_connection(lambda o=offset: _Connection(shared, o), host, port)  # type: ignore[misc]
        connections.append(protocol)
    await asyncio.gather(*(c.done for c in connections))
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return LoadResult(shared.completed, seconds, shared.errors + total - shared.completed, cpu)


def _run(host: str, port: int, requests: Sequence[bytes], clients: int, total: int) -> LoadResult:
    return asyncio.run(load(host, port, requests, clients, total))


def run_load(host: str, port: int, requests: Sequence[bytes], clients: int, total: int) -> LoadResult:
    """``load`` in a separate process (its own core and event loop): the measured run only."""
    context = mp.get_context("spawn")
    with context.Pool(1) as pool:
        return pool.apply(_run, (host, port, list(requests), clients, total))
