"""A small OpenAI-compatible server for fault probes: it counts calls, goes down, echoes headers.

Real HTTP on 127.0.0.1 (aiohttp), in a thread with its own event loop, so a test can
drive a real run against it and change its behaviour mid-run. ``go_down(seconds)``
closes the listening socket (clients get "connection refused", as when a server
process dies), drops requests arriving on kept-alive connections, and reopens on the
same port later.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import urllib.parse
from collections import Counter
from typing import Any

from aiohttp import web


class FakeOpenAI:
    """Answers ``/v1/chat/completions`` with ``\\boxed{1}`` after ``latency_s``; counts each prompt."""

    def __init__(self, latency_s: float = 0.05, echo_key: bool = False) -> None:
        self.latency_s = latency_s
        self.echo_key = echo_key
        self.completions: Counter[str] = Counter()
        """Successful replies per prompt (the last user message)."""
        self.requests = 0
        self.down_after: int | None = None
        self.down_for_s = 0.0
        self.outages = 0
        self.dropped = 0
        self.status = 200
        """Answer every request with this HTTP status (e.g. 400: a permanent client error)."""
        self._down = False
        self._prompt_rank: dict[str, int] = {}
        self._tasks: set[asyncio.Future[None]] = set()
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(30)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await self._listen()

    async def _listen(self) -> None:
        assert self._runner is not None
        self._down = False
        self._site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await self._site.start()
        server = self._site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr,attr-defined]

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def go_down_after(self, requests: int, seconds: float) -> None:
        """Stop listening once ``requests`` requests arrived, for ``seconds``; then listen again."""
        self.down_after = requests
        self.down_for_s = seconds

    def go_down(self, seconds: float | None) -> None:
        """Stop listening now, for ``seconds`` (None: until ``come_back``)."""
        asyncio.run_coroutine_threadsafe(self._outage(seconds), self._loop).result(10)

    def come_back(self) -> None:
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(10)

    async def _outage(self, seconds: float | None) -> None:
        self.outages += 1
        self._down = True
        if self._site is not None:
            await self._site.stop()
            self._site = None
        if seconds is not None:
            self._loop.call_later(seconds, lambda: self._tasks.add(asyncio.ensure_future(self._listen())))

    async def _chat(self, request: web.Request) -> web.Response:
        if self._down:  # a request on a kept-alive connection: the "dead" server drops it
            self.dropped += 1
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=503)
        self.requests += 1
        if self.down_after is not None and self.requests >= self.down_after:
            self.down_after = None
            self._tasks.add(asyncio.ensure_future(self._outage(self.down_for_s)))
        body = await request.json()
        prompt = body["messages"][-1]["content"]
        if self.status != 200:
            return web.json_response({"error": {"message": "refused by test"}}, status=self.status)
        await asyncio.sleep(self.latency_s)
        text = "The answer is \\boxed{1}."
        if self.echo_key:
            auth = request.headers.get("Authorization", "")
            key = auth.removeprefix("Bearer ")
            # Every other distinct prompt (in first-seen order) always fails, so exactly half the
            # problems error whatever the concurrency, batching or retries.
            rank = self._prompt_rank.setdefault(prompt, len(self._prompt_rank))
            if rank % 2 == 0:  # an error body that echoes the key in every encoding
                echo = {
                    "raw": auth,
                    "url": urllib.parse.quote(key, safe=""),
                    "plus": urllib.parse.quote_plus(key),
                    "basic": "Basic " + base64.b64encode(f"user:{key}".encode()).decode(),
                }
                return web.Response(status=400, text=json.dumps({"error": {"message": f"bad key {echo}"}}))
            text += f" (you sent {auth}; json {json.dumps(key)}; url {urllib.parse.quote(key)})"
        self.completions[prompt] += 1
        reply: dict[str, Any] = {
            "id": "x",
            "object": "chat.completion",
            "model": body.get("model", "m"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }
        return web.json_response(reply)
