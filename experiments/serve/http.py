"""serve-sim's HTTP/1.1 layer: an ``asyncio.Protocol`` on httptools (the C parser uvicorn uses).

Why not aiohttp: under the same load generator at 256 clients an aiohttp app spent about
0.2 ms of CPU on an empty request, twice a whole in-process simulator call, and its
low-level ``web.Server`` and uvicorn (0.15 ms) little less; a protocol on httptools spent
0.03 ms (docs/serve_sim.md, "Throughput"). serve-sim needs none of a framework: six routes,
JSON bodies, and transport control for its injected faults.

One ``Connection`` per client. httptools parses whatever arrives; each complete request
goes to the handler (``Request`` -> ``Response``) in arrival order, one at a time per
connection, so pipelined requests are answered in order (reading pauses while more than
``MAX_PIPELINED`` wait). Keep-alive follows the request (HTTP/1.0 or ``Connection: close``
closes after the reply). Bodies may come with ``Content-Length`` or chunked; one past
``MAX_BODY`` is read and discarded, then answered 413. Bad HTTP gets a JSON 400 and the
connection is closed. Deadlines, checked by one sweep per server (no timer per request):
the first request's headers and any body must arrive within ``read_timeout_s`` (else a JSON
408 and close), and an idle kept-alive connection is closed after ``KEEPALIVE_S``. A
``Response`` with ``chunks`` is streamed (chunked, one write per chunk); ``drop`` closes the
connection with no reply.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Coroutine, Generator
from email.utils import formatdate
from http import HTTPStatus
from typing import Any

import httptools
import orjson

from experiments.serve.exchange import Handler, Request, Response, error
from experiments.serve.wire import error_body

MAX_BODY = 8 * 1024 * 1024
MAX_HEAD = 64 * 1024
"""Bytes of request line and headers accepted (aiohttp's limit was 8 KB a line)."""
MAX_PIPELINED = 32
KEEPALIVE_S = 75.0
_PHRASES = {s.value: s.phrase for s in HTTPStatus}
_NO_DEADLINE = float("inf")
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class HttpServer:
    """Serves ``handler`` on a listening socket; ``cleanup`` stops it (the runner ``app.start`` returns)."""

    def __init__(self, handler: Handler, read_timeout_s: float, refused: Callable[[int], None] | None = None) -> None:
        self.handler = handler
        self.read_timeout_s = read_timeout_s
        self.refused = refused
        """Called with the status of a request the HTTP layer answered itself (408, 413, 400, 431)."""
        self.connections: set[Connection] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.clock = 0.0
        self.date = b""
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self, host: str, port: int, reuse_port: bool = False, backlog: int = 1024) -> int:
        """Listen on ``host:port`` (0 = any free port); returns the bound port."""
        self._loop = asyncio.get_running_loop()
        self._sweep()
        self._server = await self._loop.create_server(
            lambda: Connection(self), host, port, backlog=backlog, reuse_port=reuse_port or None
        )
        return int(self._server.sockets[0].getsockname()[1])

    def _sweep(self) -> None:
        """Once per interval: refresh the clock and Date, expire connections past their deadline."""
        assert self._loop is not None
        self.clock = self._loop.time()
        self.date = f"Date: {formatdate(usegmt=True)}\r\n".encode()
        for connection in [c for c in self.connections if c.deadline < self.clock]:
            connection.expire()
        interval = min(1.0, max(0.05, self.read_timeout_s / 8))
        self._sweeper = self._loop.call_later(interval, self._sweep)

    async def cleanup(self) -> None:
        """Stop listening, cancel running handlers, close every connection."""
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._server is not None:
            self._server.close()
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        for connection in list(self.connections):
            connection.close()
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)


class _Rest:
    """Awaiting it runs the rest of a coroutine that was started by hand and suspended on ``future``."""

    __slots__ = ("coroutine", "future")

    def __init__(self, coroutine: Coroutine[Any, Any, None], future: Any) -> None:
        self.coroutine = coroutine
        self.future = future

    def __await__(self) -> Generator[Any, None, None]:
        future = self.future
        while True:
            thrown: BaseException | None = None
            try:
                yield future  # the task waits on it exactly as if the coroutine had yielded it itself
            except BaseException as exc:  # cancelled while waiting: the coroutine sees it
                thrown = exc
            try:
                future = self.coroutine.send(None) if thrown is None else self.coroutine.throw(thrown)
            except StopIteration:
                return


async def _finish(coroutine: Coroutine[Any, Any, None], future: Any) -> None:
    await _Rest(coroutine, future)


def _head(status: int, content_type: str, framing: str, headers: dict[str, str], close: bool, date: bytes) -> bytes:
    """The status line and headers; ``framing`` is the Content-Length or Transfer-Encoding line (or none)."""
    lines = [f"HTTP/1.1 {status} {_PHRASES.get(status, 'Unknown')}\r\nContent-Type: {content_type}\r\n{framing}"]
    lines.extend(f"{name}: {value}\r\n" for name, value in headers.items())
    if close:
        lines.append("Connection: close\r\n")
    return "".join(lines).encode("latin-1") + date + b"Server: slmsim-serve-sim\r\n\r\n"


class Connection(asyncio.Protocol):
    """One client connection: parse, queue, answer in order (see the module doc)."""

    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.parser = httptools.HttpRequestParser(self)
        self.transport: Any = None  # duck-typed: uvloop's transports do not subclass asyncio.Transport
        self.queue: deque[tuple[Request | Response, bool, bool]] = deque()  # (item, keep-alive, HEAD)
        self.busy = False
        self.in_message = False
        self.headers_done = False
        self.paused = False
        self.unparsed = 0
        self.eof = False
        self.dead = False
        self.deadline = server.clock + server.read_timeout_s
        self.expiry = "headers"
        self._reset()

    def _reset(self) -> None:
        self.url = b""
        self.headers: dict[str, str] = {}
        self.body: list[bytes] = []
        self.size = 0
        self.head_size = 0
        self.refusal: Response | None = None

    # --- transport events -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.dead = True
        self.server.connections.discard(self)

    def eof_received(self) -> bool | None:
        self.eof = True
        if self.busy or self.queue:
            return True  # half-closed: still answer what was asked
        return None

    def data_received(self, data: bytes) -> None:
        if self.dead:
            return
        if (
            not self.headers_done
        ):  # bytes toward headers not yet complete (a header still growing is not seen by on_header)
            self.unparsed += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(400, "protocol upgrades are not supported")
            return
        except httptools.HttpParserError as exc:
            self._fail(400, f"malformed HTTP request: {str(exc)[:100]}")
            return
        if not self.headers_done and self.unparsed > MAX_HEAD:
            self._fail(431, f"request line and headers exceed {MAX_HEAD} bytes")
        elif self.headers_done and not self.busy and self.expiry != "body":  # a body still to come
            self.deadline, self.expiry = self.server.clock + self.server.read_timeout_s, "body"
        if len(self.queue) > MAX_PIPELINED and not self.paused:
            self.paused = True
            self.transport.pause_reading()

    # --- parser callbacks (httptools) -----------------------------------------------------

    def on_message_begin(self) -> None:
        self._reset()
        self.in_message = True
        self.headers_done = False

    def on_url(self, url: bytes) -> None:
        self.url += url
        self.head_size += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head_size += len(name) + len(value)
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        self.headers[key] = f"{self.headers[key]}, {text}" if key in self.headers else text

    def on_headers_complete(self) -> None:
        self.headers_done = True
        self.unparsed = 0
        if self.expiry == "headers":
            self.deadline, self.expiry = _NO_DEADLINE, "none"
        length = self.headers.get("content-length")
        if self.head_size > MAX_HEAD:  # it came whole in one read, so the check in data_received never saw it
            self._refuse(431, f"request line and headers exceed {MAX_HEAD} bytes")
        elif length is not None and length.strip().isdigit() and int(length) > MAX_BODY:
            self._refuse(413, f"request body too large: {int(length)} bytes, the limit is {MAX_BODY}")
        if self.headers.get("expect", "").lower() == "100-continue":
            if self.refusal is not None:  # the client waits before sending: answer now, read nothing
                self._write(self.refusal, False, False)
                self.dead = True
                return
            self.transport.write(_CONTINUE)

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.refusal is not None:
            return  # read and dropped
        if self.size > MAX_BODY:
            self._refuse(413, f"request body too large: over {MAX_BODY} bytes")
            return
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.in_message = self.headers_done = False
        keep_alive = self.parser.should_keep_alive()
        method = self.parser.get_method().decode("latin-1")
        item: Request | Response
        if self.refusal is not None:
            item = self.refusal
        else:
            path = self.url.split(b"?", 1)[0].decode("latin-1")
            body = self.body[0] if len(self.body) == 1 else b"".join(self.body)
            item = Request(method, path, self.headers, body)
        self.queue.append((item, keep_alive, method == "HEAD"))
        if not self.busy:
            self._next()

    # --- answering ------------------------------------------------------------------------

    def _refuse(self, status: int, message: str) -> None:
        self.refusal = error(status, message)
        self.body = []
        if self.server.refused is not None:
            self.server.refused(status)

    def _next(self) -> None:
        """Answer the next queued request (a task for the handler), or wait for one."""
        while self.queue and not self.dead:
            item, keep_alive, head = self.queue.popleft()
            if isinstance(item, Response):
                self._write(item, keep_alive, head)
                continue
            self.busy = True
            self.deadline, self.expiry = _NO_DEADLINE, "none"
            # Started at once, as Python 3.12's eager tasks do: a reply that needs no waiting (the
            # simulator's usual one) is written without a task or a turn of the loop.
            handling = self._handle(item, keep_alive, head)
            try:
                future = handling.send(None)
            except StopIteration:
                continue
            task = asyncio.get_running_loop().create_task(_finish(handling, future))
            self.server.tasks.add(task)
            task.add_done_callback(self._resumed)
            return
        self.busy = False
        if self.dead:
            return
        if self.eof:
            self.close()
        elif self.headers_done:
            self.deadline, self.expiry = self.server.clock + self.server.read_timeout_s, "body"
        else:
            self.deadline, self.expiry = self.server.clock + KEEPALIVE_S, "idle"
        if self.paused:
            self.paused = False
            self.transport.resume_reading()

    async def _handle(self, request: Request, keep_alive: bool, head: bool) -> None:
        try:
            response = await self.server.handler(request)
        except Exception as exc:  # a bug: still one JSON line
            response = Response(
                500, orjson.dumps(error_body(500, f"internal error: {type(exc).__name__}", "server_error"))
            )
        self._write(response, keep_alive, head)

    def _resumed(self, task: asyncio.Task[None]) -> None:
        self.server.tasks.discard(task)
        self._next()

    def _write(self, response: Response, keep_alive: bool, head: bool) -> None:
        transport = self.transport
        if self.dead or transport.is_closing():
            self.dead = True
            return
        if response.drop:
            self.close()
            return
        date, status, kind, headers = self.server.date, response.status, response.content_type, response.headers
        if response.chunks is None:
            framing = f"Content-Length: {len(response.body)}\r\n"
            transport.write(
                _head(status, kind, framing, headers, not keep_alive, date) + (b"" if head else response.body)
            )
        elif self.parser.get_http_version() == "1.0":  # no chunked encoding in HTTP/1.0: the close ends the body
            keep_alive = False
            transport.write(_head(status, kind, "", headers, True, date))
            for chunk in [] if head else response.chunks:
                transport.write(chunk)
        else:
            transport.write(_head(status, kind, "Transfer-Encoding: chunked\r\n", headers, not keep_alive, date))
            for chunk in [] if head else response.chunks:
                transport.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            transport.write(b"0\r\n\r\n")
        if not keep_alive:
            self.close()

    def _fail(self, status: int, message: str) -> None:
        """Bad framing: a JSON error, then the connection is closed (nothing after it can be parsed)."""
        if self.server.refused is not None:
            self.server.refused(status)
        if not self.busy:
            self._write(error(status, message), False, False)
        self.close()

    def expire(self) -> None:
        """Past the deadline: a JSON 408 for a request not received in time; an idle connection just closes."""
        if self.expiry == "headers":
            self._fail(408, "request headers not received in time")
        elif self.expiry == "body":
            self._fail(408, f"request body not received within {self.server.read_timeout_s:g}s")
        else:
            self.close()

    def close(self) -> None:
        self.dead = True
        self.deadline = _NO_DEADLINE
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
