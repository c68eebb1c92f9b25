"""What serve-sim's HTTP layer (``http``) hands the server and takes back: a request, a reply."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import orjson

from experiments.serve.wire import error_body


class Request:
    """One parsed request: method, path (no query), headers (lower-case names), the whole body."""

    __slots__ = ("body", "headers", "method", "path")

    def __init__(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body


class Response:
    """A reply: a body, or ``chunks`` streamed one write each, or ``drop`` (close, no reply)."""

    __slots__ = ("body", "chunks", "content_type", "drop", "headers", "status")

    def __init__(
        self,
        status: int = 200,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
        chunks: list[bytes] | None = None,
        drop: bool = False,
    ) -> None:
        self.status = status
        self.body = body
        self.headers = headers if headers is not None else {}
        self.content_type = content_type
        self.chunks = chunks
        self.drop = drop


Handler = Callable[[Request], Awaitable[Response]]


def error(status: int, message: str) -> Response:
    """A JSON error in the OpenAI shape, for what the HTTP layer refuses itself."""
    return Response(status, orjson.dumps(error_body(status, message, "invalid_request_error")))
