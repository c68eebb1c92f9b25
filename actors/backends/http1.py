"""The openai backend's HTTP/1.1 client: keep-alive connections on httptools (the C parser serve-sim uses).

Why not aiohttp: a model actor spends most of its CPU in HTTP, and an aiohttp
``ClientSession.post`` cost 0.38 ms of CPU a request where a protocol on httptools cost
0.10 ms (request bytes written at once, reply parsed in C, no header objects, no per-request
payload, writer or stream-reader objects; same server, same orjson, in alternating runs at
1,024 in flight, ``docs/cluster.md``). The backend needs little of a client: one URL, POST,
JSON bodies, a pool, a total deadline.

What it does, as aiohttp did for the backend: a pool of at most ``limit`` connections to the
one host (more callers wait for a free one), a connection kept alive unless the server says
``Connection: close`` (or HTTP/1.0), an idle connection the server closed is dropped and not
reused, replies with ``Content-Length``, chunked or read to the end of the connection, gzip
and deflate bodies decoded (none is asked for: no ``Accept-Encoding`` is sent), TLS for
``https`` with the system's default certificate checks. A POST is never re-sent by the
client (the retry wrapper decides). What it does not: redirects (a 3xx is the server's
answer, reported like any other status), cookies, proxies (aiohttp ignored the proxy
environment too by default). Errors: ``TimeoutError`` past the deadline, ``OSError`` for a
connection that failed or closed before its reply was complete, ``BadReply`` for bytes that
are not HTTP.
"""

from __future__ import annotations

import asyncio
import ssl
import zlib
from typing import NamedTuple
from urllib.parse import urlsplit

import httptools


class BadReply(Exception):
    """The server's bytes are not a well-formed HTTP/1.1 reply."""


class Reply(NamedTuple):
    """A whole HTTP reply: status, headers (lower-case names; repeated ones joined by ", "), body."""

    status: int
    headers: dict[str, str]
    body: bytes


class _Connection(asyncio.Protocol):
    """One keep-alive connection; one request at a time (``waiter`` is the reply in progress)."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.waiter: asyncio.Future[Reply] | None = None
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._to_eof = False  # no length and not chunked: the body ends with the connection
        self.keep_alive = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, data: bytes) -> asyncio.Future[Reply]:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self._headers, self._body, self._to_eof = {}, [], False
        self.transport.write(data)
        return self.waiter

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(BadReply(f"{type(exc).__name__}: {exc}"))
            self.close()

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        self._headers[key] = f"{self._headers[key]}, {text}" if key in self._headers else text

    def on_headers_complete(self) -> None:
        chunked = "chunked" in self._headers.get("transfer-encoding", "").lower()
        self._to_eof = not chunked and "content-length" not in self._headers

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        if 100 <= self.parser.get_status_code() < 200:  # an interim reply (103 Early Hints): the real one follows
            self._headers, self._body = {}, []
            return
        self.keep_alive = self.parser.should_keep_alive()
        self._finish()

    def _finish(self) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is None or waiter.done():  # a reply nobody asked for, or one whose caller gave up
            self.close()
            return
        try:
            body = _decoded(b"".join(self._body), self._headers.get("content-encoding", ""))
        except zlib.error as exc:
            waiter.set_exception(BadReply(f"undecodable {self._headers['content-encoding']!r} body: {exc}"))
            return
        waiter.set_result(Reply(self.parser.get_status_code(), self._headers, body))

    def _fail(self, exc: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is None:
            return
        if self._to_eof and exc is None:  # the reply's end
            self.keep_alive = False
            self._finish()
            return
        self._fail(ConnectionResetError(f"the server closed the connection before the reply was complete ({exc})"))

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


def _decoded(body: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("gzip", "x-gzip", "deflate"):
        return zlib.decompress(body, wbits=47)  # 47: gzip or zlib header, detected
    return body


class Http1Pool:
    """POSTs to one URL over at most ``limit`` pooled keep-alive connections; made inside its event loop.

    ``ssl_context`` (https only) defaults to the system's: certificates and host names checked.
    """

    def __init__(
        self, url: str, headers: dict[str, str], limit: int, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ssl = (ssl_context or ssl.create_default_context()) if parts.scheme == "https" else None
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host = f"[{self.host}]" if ":" in self.host else self.host  # an IPv6 literal
        host = host if parts.port is None else f"{host}:{parts.port}"
        lines = [f"POST {path} HTTP/1.1", f"Host: {host}", "User-Agent: slmsim", "Accept: */*"]
        for name, value in headers.items():
            if "\r" in value or "\n" in value:
                raise ValueError(f"header {name!r} contains a line break")  # never the value: it may be a key
            lines.append(f"{name}: {value}")
        self._head = ("\r\n".join(lines) + "\r\nContent-Length: ").encode("latin-1")
        self._gate = asyncio.Semaphore(limit)
        self.limit = limit
        self._idle: list[_Connection] = []
        self.closed = False

    async def _connection(self) -> _Connection:
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed:
                return conn
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(
            _Connection, self.host, self.port, ssl=self.ssl, server_hostname=self.host if self.ssl else None
        )
        return conn

    async def post(self, body: bytes, timeout_s: float) -> Reply:
        """The server's reply to ``body``, all of it, within ``timeout_s`` (waiting for a connection included)."""
        if self.closed:
            raise RuntimeError("the HTTP pool is closed")
        data = self._head + b"%d\r\n\r\n" % len(body) + body
        async with asyncio.timeout(timeout_s), self._gate:
            conn = await self._connection()
            try:
                reply = await conn.send(data)
            except BaseException:  # timed out, cancelled, failed: the connection's state is unknown
                conn.close()
                raise
        if conn.keep_alive and not conn.closed and not self.closed:
            self._idle.append(conn)
        else:
            conn.close()
        return reply

    async def close(self) -> None:
        self.closed = True
        for conn in self._idle:
            conn.close()
        self._idle.clear()
