"""A connection that never finishes sending its request headers is answered 408 and closed.

aiohttp times out request *bodies* only through the handler (``SimServer._read``) and has
no deadline for headers, so a client that sends half a request line could hold a
connection open for the keep-alive timeout. ``HeaderGuard`` wraps aiohttp's protocol: if
the blank line that ends the first request's headers has not arrived ``timeout_s`` after
the connection opened, it writes a JSON 408 and closes. Later requests on a kept-alive
connection fall under aiohttp's keep-alive timeout.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

_BODY = json.dumps(
    {"error": {"message": "request headers not received in time", "type": "invalid_request_error", "param": None,
               "code": 408}}
).encode()  # fmt: skip
TIMEOUT_REPLY = (
    b"HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\nConnection: close\r\n"
    + f"Content-Length: {len(_BODY)}\r\n\r\n".encode()
    + _BODY
)


class HeaderGuard(asyncio.Protocol):
    """aiohttp's request handler with a deadline on the first request's headers."""

    def __init__(self, inner: Any, loop: asyncio.AbstractEventLoop, timeout_s: float) -> None:
        self._inner = inner
        self._loop = loop
        self._timeout_s = timeout_s
        self._timer: asyncio.TimerHandle | None = None
        self._tail = b""
        self._transport: Any = None  # uvloop's transports do not subclass asyncio's, so no isinstance

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        self._timer = self._loop.call_later(self._timeout_s, self._expire)
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._timer is not None:
            seen = self._tail + data
            if b"\r\n\r\n" in seen:
                self._timer.cancel()
                self._timer = None
            else:
                self._tail = seen[-3:]
        self._inner.data_received(data)

    def _expire(self) -> None:
        self._timer = None
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.write(TIMEOUT_REPLY)
            transport.close()

    def eof_received(self) -> bool | None:
        result: bool | None = self._inner.eof_received()
        return result

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


class GuardedSite(web.TCPSite):
    """A ``TCPSite`` whose connections go through ``HeaderGuard``."""

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        header_timeout_s: float,
        backlog: int,
        reuse_port: bool = False,
    ) -> None:
        super().__init__(runner, host, port, backlog=backlog, reuse_port=reuse_port or None)
        self._header_timeout_s = header_timeout_s

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with its runner, as TCPSite.start does
        loop = asyncio.get_running_loop()
        server = self._runner.server
        assert server is not None
        timeout = self._header_timeout_s
        self._server = await loop.create_server(
            lambda: HeaderGuard(server(), loop, timeout),
            self._host,
            self._port,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
            reuse_port=self._reuse_port,
        )
