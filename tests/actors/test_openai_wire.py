"""The openai backend's wire format and its two HTTP clients where they differ (redirects)."""

from __future__ import annotations

import pytest
from aiohttp import web

from actors.backends.openai import OpenAIBackend
from protocols.messages import ChatMessage, Completion, CompletionRequest, Failure
from tests.actors.test_openai_backend import spec

CHAT = CompletionRequest(model="echo", messages=(ChatMessage(role="user", content="What is 3+4?"),))


@pytest.mark.parametrize("http_client", ["http1", "aiohttp"])
async def test_a_redirect_is_followed_by_aiohttp_and_named_by_http1(http_client: str) -> None:
    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect("/v2/chat/completions")  # 307: the POST is to be re-sent as is

    async def answer(request: web.Request) -> web.Response:
        return web.json_response(
            {"choices": [{"message": {"content": "#### 7"}, "finish_reason": "stop"}], "usage": {}}
        )

    app = web.Application()
    app.router.add_post("/v1/chat/completions", moved)
    app.router.add_post("/v2/chat/completions", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
    backend = OpenAIBackend(spec(url, http_client=http_client))
    try:
        reply = await backend.complete(CHAT)
    finally:
        await backend.aclose()
        await runner.cleanup()
    if http_client == "aiohttp":
        assert isinstance(reply, Completion) and reply.text == "#### 7"
    else:
        assert isinstance(reply, Failure) and (reply.error, reply.retryable) == ("client", False)
        assert "HTTP 307: redirected to /v2/chat/completions" in reply.message
        assert "http_client: aiohttp" in reply.message


def test_wire_seed_hashes_exactly_the_json_dumps_bytes_on_either_path() -> None:
    # The fast (orjson) path must hash the very bytes json.dumps wrote, or every live seed changes.
    import json
    import random

    from actors.backends.openai import _canonical

    rng = random.Random(7)
    alphabet = [chr(i) for i in range(128)] + ["é", "✓", "😀", "\u2028", '"', "\\"]
    fast = 0
    for _ in range(400):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        fields = {"seed": 3, "model": "m", "messages": [["user", text]], "prompt": None, "sample_index": 2}
        expected = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode("utf-8")
        assert _canonical(fields, ["m", text]) == expected, repr(text)
        fast += text.isascii() and "\x7f" not in text
    assert 50 < fast < 400  # both paths were exercised


def test_json_only_the_stdlib_reads_or_writes_still_goes_through() -> None:
    import json

    from actors.backends.openai import _dumps

    backend = OpenAIBackend(spec("http://127.0.0.1:9/v1", http_client="http1"))
    usage = b'"usage": {"prompt_tokens": 3, "completion_tokens": 2}'
    raw = b'{"choices": [{"message": {"content": "#### 7"}}], "x": NaN, ' + usage + b"}"
    reply = backend._parse(raw, 0.1, CHAT, {})
    assert isinstance(reply, Completion) and reply.text == "#### 7" and reply.usage.completion_tokens == 2
    assert isinstance(backend._parse(b'{"choices": []}', 0.1, CHAT, {}), Failure)
    lone = {"messages": [{"role": "user", "content": "a\ud800b"}]}  # orjson refuses a lone surrogate
    assert json.loads(_dumps(lone)) == lone
