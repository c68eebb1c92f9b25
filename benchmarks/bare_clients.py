"""The bare clients the HTTP benchmarks compare the stack against, and the one request they send.

``benchmarks.throughput`` drives them from many workers (req/s), ``benchmarks.backend_cpu``
in rounds (CPU a request); both send ``body()`` to serve-sim's chat endpoint.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import aiohttp

if TYPE_CHECKING:
    from actors.backends.http1 import Http1Pool

CARD = "Llama-3.1-8B-Instruct"
QUESTION = "What is 17 + 25?"


def body() -> dict[str, Any]:
    return {"model": CARD, "messages": [{"role": "user", "content": QUESTION}], "temperature": 0.0, "max_tokens": 64}


Send = Callable[[], Awaitable[int]]
"""One chat request (``body()``) sent and its whole reply read; returns the HTTP status."""


def aiohttp_send(session: aiohttp.ClientSession, base_url: str) -> Send:
    """``Send`` over an aiohttp session: ``json=`` body, ``read()`` (the client a user would write)."""

    async def send() -> int:
        async with session.post(f"{base_url}/chat/completions", json=body()) as response:
            await response.read()
            return response.status

    return send


def http1_send(pool: Http1Pool, timeout_s: float) -> Send:
    """``Send`` over the stack's own client (an ``http1.Http1Pool`` for ``/chat/completions``), orjson both ways."""
    import orjson

    async def send() -> int:
        reply = await pool.post(orjson.dumps(body()), timeout_s)
        orjson.loads(reply.body)
        return reply.status

    return send


def http1_pool(base_url: str, in_flight: int) -> Http1Pool:
    """The openai backend's HTTP pool (``actors.backends.http1``) for serve-sim's chat endpoint."""
    from actors.backends.http1 import Http1Pool

    return Http1Pool(f"{base_url}/chat/completions", {"Content-Type": "application/json"}, in_flight)
