"""serve-sim's own HTTP/1.1 layer (``experiments/serve/http.py``) on raw sockets: framing a client may use.

Pipelined requests answered in order, chunked request bodies, ``Expect: 100-continue``,
HTTP/1.0, HEAD, a chunked body past the limit, and malformed HTTP (a JSON 400, then the
connection closes).
"""

from __future__ import annotations

import asyncio
import json

from tests.experiments.serve_sim_helpers import ONE, Served

CHAT = json.dumps({"model": "sim-a", "messages": [{"role": "user", "content": ONE}], "seed": 1}).encode()


def post(body: bytes, extra: str = "") -> bytes:
    head = f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
    return head.encode() + body


async def connect(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = url.removeprefix("http://").removesuffix("/v1").split(":")
    return await asyncio.open_connection(host, int(port))


async def read_reply(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """One reply: status, headers (lower-case names), body (Content-Length or chunked)."""
    head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)).decode("latin-1")
    status_line, *lines = head.strip().split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    status = int(status_line.split()[1])
    if headers.get("transfer-encoding") == "chunked":
        body = b""
        while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
            body += (await reader.readexactly(size + 2))[:-2]
        await reader.readexactly(2)
        return status, headers, body
    return status, headers, await reader.readexactly(int(headers.get("content-length", "0")))


async def test_pipelined_requests_are_answered_in_order_on_one_connection(served: Served) -> None:
    url, recorder, _ = served
    reader, writer = await connect(url)
    models = b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n"
    writer.write(post(CHAT) + models + post(b"{not json") + b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    replies = [await read_reply(reader) for _ in range(4)]
    assert [status for status, _, _ in replies] == [200, 200, 400, 200]
    assert (
        json.loads(replies[0][2])["object"] == "chat.completion" and replies[0][1]["x-slmsim-problem"] == "math500/m-1"
    )
    assert [m["id"] for m in json.loads(replies[1][2])["data"]] == ["sim-a", "sim-b"]
    assert "not valid JSON" in json.loads(replies[2][2])["error"]["message"]
    assert all(headers["x-slmsim-source"] == "sim" for _, headers, _ in replies)
    writer.write(post(CHAT))  # still open: keep-alive is the HTTP/1.1 default
    assert (await read_reply(reader))[0] == 200 and len(recorder.requests) == 2
    writer.write(b"".join(post(CHAT) for _ in range(50)))  # past MAX_PIPELINED: reading pauses, then resumes
    replies = [await read_reply(reader) for _ in range(50)]
    assert all(status == 200 for status, _, _ in replies) and len(recorder.requests) == 52
    ids = [json.loads(body)["id"] for _, _, body in replies]
    assert ids == sorted(ids, key=lambda i: int(i.rsplit("-", 1)[1]))  # answered in the order sent
    writer.close()


async def test_a_chunked_request_body_is_read_whole(served: Served) -> None:
    url, recorder, _ = served
    reader, writer = await connect(url)
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(CHAT[i : i + 10]), CHAT[i : i + 10]) for i in range(0, len(CHAT), 10))
    head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    writer.write(head + chunks[:25])
    await writer.drain()
    await asyncio.sleep(0.05)  # the body arrives in pieces
    writer.write(chunks[25:] + b"0\r\n\r\n")
    status, headers, _ = await read_reply(reader)
    assert status == 200 and headers["x-slmsim-problem"] == "math500/m-1" and len(recorder.requests) == 1
    writer.close()


async def test_a_chunked_body_past_the_limit_is_a_413_and_reaches_no_model(served: Served) -> None:
    url, recorder, server = served
    reader, writer = await connect(url)
    writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    piece = b"x" * (1 << 20)
    for _ in range(9):
        writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        await writer.drain()
    writer.write(b"0\r\n\r\n")
    status, _, body = await read_reply(reader)
    assert status == 413 and "too large" in json.loads(body)["error"]["message"]
    assert recorder.requests == [] and server.stats["bad_request"] == 1
    writer.close()


async def test_expect_100_continue_and_http_1_0_and_head(served: Served) -> None:
    url, _, _ = served
    reader, writer = await connect(url)
    writer.write(
        post(b"", "Expect: 100-continue\r\n").replace(b"Content-Length: 0", f"Content-Length: {len(CHAT)}".encode())
    )
    assert await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10) == b"HTTP/1.1 100 Continue\r\n\r\n"
    writer.write(CHAT)
    assert (await read_reply(reader))[0] == 200
    writer.write(b"HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.1 200") and b"Content-Length: " in head  # the GET's length, no body
    writer.write(b"GET /health HTTP/1.0\r\n\r\n")
    status, headers, body = await read_reply(reader)
    assert status == 200 and json.loads(body)["status"] == "ok" and headers["connection"] == "close"
    assert await asyncio.wait_for(reader.read(), 10) == b""  # HTTP/1.0: closed after the reply
    writer.close()


async def test_headers_past_64_kb_are_a_431_whether_they_come_whole_or_in_pieces(served: Served) -> None:
    url, _, _ = served
    big = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n"
    reader, writer = await connect(url)
    writer.write(big)  # whole: refused, the connection stays usable
    assert (await read_reply(reader))[0] == 431
    writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await read_reply(reader))[0] == 200
    writer.write(big[:40_000])
    await writer.drain()
    await asyncio.sleep(0.05)
    writer.write(big[40_000:-4])  # in pieces, never ending: refused before the end, and closed
    status, headers, _ = await read_reply(reader)
    assert status == 431 and headers["connection"] == "close"
    writer.close()


async def test_malformed_http_gets_a_json_400_and_the_connection_closes(served: Served) -> None:
    url, _, _ = served
    for garbage in (
        b"NOT HTTP AT ALL\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost x\r\n\r\n",
        post(b"{}", "Content-Length: 5\r\n"),
    ):
        reader, writer = await connect(url)
        writer.write(garbage)
        status, headers, body = await read_reply(reader)
        assert status == 400 and "malformed HTTP" in json.loads(body)["error"]["message"], body
        assert headers["connection"] == "close" and await asyncio.wait_for(reader.read(), 10) == b""
        writer.close()
