"""The openai backend's HTTP/1.1 client against raw scripted servers (real sockets on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import gzip
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from actors.backends.http1 import BadReply, Http1Pool

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
Serve = Callable[[Script], Awaitable[tuple[str, list[int]]]]


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """(head, body) of one request, by its Content-Length."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.lower().split(b"\r\n")
    length = next(int(line.split(b":")[1]) for line in lines if line.startswith(b"content-length"))
    return head, await reader.readexactly(length)


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Start a server running ``script`` per connection; returns (url, connections accepted so far)."""
    servers: list[asyncio.Server] = []

    async def _start(script: Script) -> tuple[str, list[int]]:
        accepted: list[int] = []

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted.append(1)
            try:
                await script(reader, writer)
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        servers.append(server)
        return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/chat/completions", accepted

    yield _start
    for server in servers:
        server.close()


def reply(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


async def test_keep_alive_reuses_one_connection_and_sends_the_request_as_given(serve: Serve) -> None:
    seen: list[tuple[bytes, bytes]] = []

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head, body = await read_request(reader)
            seen.append((head, body))
            extra = b"X-Slmsim-Source: sim\r\nRetry-After: 1\r\nRetry-After: 2\r\n"
            writer.write(reply(b'{"n": %d}' % len(seen), extra))

    url, accepted = await serve(echo)
    pool = Http1Pool(url, {"Content-Type": "application/json", "Authorization": "Bearer k"}, limit=4)
    try:
        replies = [await pool.post(b'{"q": %d}' % i, 5.0) for i in range(3)]
    finally:
        await pool.close()
    assert [r.body for r in replies] == [b'{"n": 1}', b'{"n": 2}', b'{"n": 3}'] and len(accepted) == 1
    assert replies[0].status == 200 and replies[0].headers["x-slmsim-source"] == "sim"
    assert replies[0].headers["retry-after"] == "1, 2"
    head, body = seen[2]
    assert head.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n") and body == b'{"q": 2}'
    assert b"\r\nHost: 127.0.0.1:" in head and b"\r\nAuthorization: Bearer k\r\n" in head


async def test_chunked_gzip_to_eof_and_connection_close_replies(serve: Serve) -> None:
    async def varied(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _, body = await read_request(reader)
        if body == b"chunked":
            chunks = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
            writer.write(b"HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks)
            _, body = await read_request(reader)  # the same connection, kept alive
        if body == b"gzip":
            writer.write(reply(gzip.compress(b"unzipped"), b"Content-Encoding: gzip\r\nConnection: close\r\n"))
            return
        writer.write(b"HTTP/1.1 200 OK\r\n\r\nuntil the end")  # no length: the body ends with the connection
        await writer.drain()

    url, accepted = await serve(varied)
    pool = Http1Pool(url, {}, limit=2)
    try:
        chunked = await pool.post(b"chunked", 5.0)
        zipped = await pool.post(b"gzip", 5.0)
        to_eof = await pool.post(b"eof", 5.0)
    finally:
        await pool.close()
    assert (chunked.status, chunked.body) == (503, b"hello world")
    assert zipped.body == b"unzipped" and to_eof.body == b"until the end"
    assert len(accepted) == 2  # the chunked reply kept its connection; Connection: close ended it


async def test_failures_are_typed_and_a_server_closed_idle_connection_is_not_reused(serve: Serve) -> None:
    async def once_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _, body = await read_request(reader)
        if body == b"hang":
            await asyncio.sleep(10)
        elif body == b"cut":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
        elif body == b"garbage":
            writer.write(b"SMTP ready\r\n\r\n")
        else:
            writer.write(reply(b"ok"))
        await writer.drain()  # then the server closes the kept-alive connection

    url, accepted = await serve(once_then_close)
    pool = Http1Pool(url, {}, limit=2)
    try:
        assert (await pool.post(b"a", 5.0)).body == b"ok"
        await asyncio.sleep(0.05)  # the server's close arrives
        assert (await pool.post(b"b", 5.0)).body == b"ok"  # on a fresh connection, not the closed one
        await asyncio.sleep(0.05)
        with pytest.raises(TimeoutError):
            await pool.post(b"hang", 0.2)
        with pytest.raises(ConnectionResetError, match="before the reply was complete"):
            await pool.post(b"cut", 5.0)
        with pytest.raises(BadReply):
            await pool.post(b"garbage", 5.0)
    finally:
        await pool.close()
    assert len(accepted) == 5
    refused = Http1Pool("http://127.0.0.1:9/v1", {}, limit=1)  # nothing listens on the discard port
    with pytest.raises(OSError):
        await refused.post(b"x", 5.0)


async def test_pool_bounds_connections_and_rejects_bad_headers(serve: Serve) -> None:
    now = peak = 0

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal now, peak
        while True:
            await read_request(reader)
            now += 1
            peak = max(peak, now)
            await asyncio.sleep(0.05)
            now -= 1
            writer.write(reply(b"ok"))

    url, accepted = await serve(slow)
    pool = Http1Pool(url, {}, limit=3)
    try:
        replies = await asyncio.gather(*(pool.post(b"x", 10.0) for _ in range(12)))
    finally:
        await pool.close()
    assert all(r.body == b"ok" for r in replies) and peak == 3 and len(accepted) == 3
    with pytest.raises(ValueError, match="'Authorization' contains a line break") as caught:
        Http1Pool(url, {"Authorization": "Bearer sk-SECRET\r\nX-Evil: 1"}, limit=1)
    assert "SECRET" not in str(caught.value)
    with pytest.raises(ValueError, match="not an http"):
        Http1Pool("ftp://example.org/x", {}, limit=1)


async def test_https_checks_the_certificate_and_skips_an_interim_reply() -> None:
    # tests/fixtures/tls: a self-signed certificate for 127.0.0.1, made for this test only.
    tls = Path(__file__).resolve().parents[1] / "fixtures" / "tls"
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(tls / "cert.pem", tls / "key.pem")

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await read_request(reader)
            writer.write(b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n" + reply(b"secure"))
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass  # the client that refused the certificate hung up
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=served)
    url = f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/chat/completions"
    trusting = Http1Pool(url, {}, limit=1, ssl_context=ssl.create_default_context(cafile=tls / "cert.pem"))
    try:
        got = await trusting.post(b"x", 5.0)
        assert (got.status, got.body) == (200, b"secure")
        with pytest.raises(ssl.SSLCertVerificationError):  # an OSError: a "connection" failure upstream
            await Http1Pool(url, {}, limit=1).post(b"x", 5.0)
    finally:
        await trusting.close()
        server.close()
