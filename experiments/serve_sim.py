"""``slmsim serve-sim``: the simulated models behind an OpenAI-compatible HTTP API (aiohttp).

Any OpenAI client (the official ``openai`` package, LangChain, third-party agent
code) works against it with no change but its base URL. Endpoints:
``GET /v1/models``, ``POST /v1/chat/completions``, ``POST /v1/completions``
(``usage`` included; ``stream: true`` is served as server-sent events carrying the
whole text in one chunk). Every completion is simulated: the response's
``system_fingerprint`` is ``slmsim-sim`` and ``x-slmsim-source: sim`` is sent.

The simulator grades against real references, so the server finds the problem a
prompt is about by looking its question up in MATH-500, GSM8K and the synthetic
set (a line of the prompt, after an optional ``Question:``/``Problem:`` label,
that starts a known question which the prompt contains in full). A client may
instead send ``slmsim_meta`` (a ``RequestMeta`` JSON) in the body.

Faults are injected per request from a seeded stream (not per prompt, so a retry
can succeed): 429 with Retry-After, 500/503, a hang past the client's timeout,
and a 200 whose body is truncated JSON. A malformed *request* always gets a 4xx
JSON error in the OpenAI shape, never a 500 or a hang.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import random
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from experiments.problem_lookup import ProblemLookup, load_lookup
from protocols.config import FaultSpec, ModelSpec
from protocols.interfaces import Backend
from protocols.messages import ChatMessage, Completion, CompletionRequest, Failure, RequestMeta

_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
_FAILURE_STATUS = {"rate_limit": 429, "timeout": 504, "client": 400, "malformed": 502}


class BadRequest(Exception):
    """A client error: becomes a 4xx JSON reply."""

    def __init__(self, message: str, status: int = 400, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.param = param


def parse_faults(text: str) -> FaultSpec:
    """``rate_limit=0.1,server_error=0.05,timeout=0.02,malformed=0`` -> FaultSpec."""
    values: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"fault {part!r} is not name=rate")
        if name not in FaultSpec.model_fields:
            raise ValueError(f"unknown fault {name!r}; known: {sorted(FaultSpec.model_fields)}")
        values[name] = float(value)
    return FaultSpec(**values)


@dataclass
class ServerSettings:
    """How the server behaves beyond the models it serves."""

    latency_s: float = 0.0
    """Fixed extra latency per request (the benchmark's stand-in for a real server)."""
    faults: FaultSpec = field(default_factory=FaultSpec)
    fault_seed: int = 0
    retry_after_s: float = 1.0
    hang_s: float = 600.0
    """How long an injected timeout hangs before answering 504."""
    drop: float = 0.0
    """Rate of requests whose connection is closed without a reply (not in FaultSpec: server-only)."""


def _error(status: int, message: str, kind: str, param: str | None = None) -> web.Response:
    body = {"error": {"message": message, "type": kind, "param": param, "code": status}}
    return web.json_response(body, status=status)


@web.middleware
async def _json_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
        if not response.prepared:  # a stream sets it itself before its first byte
            response.headers["x-slmsim-source"] = "sim"
        return response
    except BadRequest as exc:
        return _error(exc.status, str(exc), "invalid_request_error", exc.param)
    except web.HTTPException as exc:  # unknown route, wrong method: still JSON
        return _error(exc.status, exc.reason, "invalid_request_error")


def _text_of(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: keep the text ones
        parts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        if all(isinstance(p, str) for p in parts):
            return "".join(parts)  # type: ignore[arg-type]
    raise BadRequest(f"{where}: content must be a string or a list of text parts", param=where)


class SimServer:
    """An aiohttp app serving ``backends`` (model id -> Backend) in the OpenAI wire format."""

    def __init__(
        self,
        backends: Mapping[str, Backend],
        settings: ServerSettings | None = None,
        lookup: ProblemLookup | None = None,
    ) -> None:
        self.backends = dict(backends)
        self.settings = settings or ServerSettings()
        self.lookup = lookup
        self._rng = random.Random(self.settings.fault_seed)
        self._ids = itertools.count()
        self.counts: dict[str, int] = {"requests": 0, "rate_limit": 0, "server_error": 0}
        self.counts.update({"timeout": 0, "malformed": 0, "drop": 0, "bad_request": 0})

    def app(self) -> web.Application:
        app = web.Application(middlewares=[_json_errors], client_max_size=8 * 1024 * 1024)
        app.router.add_get("/v1/models", self.models)
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/v1/completions", self.completions)
        app.router.add_get("/health", self.health)
        return app

    async def health(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "models": sorted(self.backends)})

    async def models(self, _: web.Request) -> web.Response:
        data = [
            {"id": name, "object": "model", "created": 0, "owned_by": "slmsim-sim"} for name in sorted(self.backends)
        ]
        return web.json_response({"object": "list", "data": data})

    async def chat(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, chat=True)

    async def completions(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, chat=False)

    async def _serve(self, http: web.Request, chat: bool) -> web.StreamResponse:
        self.counts["requests"] += 1
        try:
            body = await self._body(http)
            model, requests = self._requests(body, chat)
        except BadRequest:
            self.counts["bad_request"] += 1
            raise
        fault = self._draw_fault()
        if fault is not None:
            return await self._inject(fault, http)
        if self.settings.latency_s > 0:
            await asyncio.sleep(self.settings.latency_s)
        replies = [await self.backends[model].complete(r) for r in requests]
        failures = [r for r in replies if isinstance(r, Failure)]
        if failures:
            status = _FAILURE_STATUS.get(failures[0].error, 500)
            return _error(status, failures[0].message, failures[0].error)
        wire = self._wire(model, [r for r in replies if isinstance(r, Completion)], chat)
        if body.get("stream"):
            options = body.get("stream_options")
            usage = isinstance(options, dict) and bool(options.get("include_usage"))
            return await self._stream(http, wire, chat, usage)
        return web.json_response(wire)

    async def _stream(
        self, http: web.Request, wire: dict[str, Any], chat: bool, include_usage: bool
    ) -> web.StreamResponse:
        """The reply as server-sent events: one content chunk per choice, its finish, [DONE]."""
        headers = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "x-slmsim-source": "sim"}
        response = web.StreamResponse(headers=headers)
        await response.prepare(http)
        head = {k: wire[k] for k in ("id", "created", "model", "system_fingerprint")}
        head["object"] = "chat.completion.chunk" if chat else "text_completion"
        chunks: list[dict[str, Any]] = []
        for choice in wire["choices"]:
            i, finish = choice["index"], choice["finish_reason"]
            if chat:
                delta = {"role": "assistant", "content": choice["message"]["content"]}
                chunks.append({"index": i, "delta": delta, "finish_reason": None, "logprobs": None})
                chunks.append({"index": i, "delta": {}, "finish_reason": finish, "logprobs": None})
            else:
                chunks.append({"index": i, "text": choice["text"], "finish_reason": finish, "logprobs": None})
        events = [{**head, "choices": [c]} for c in chunks]
        if include_usage:
            events.append({**head, "choices": [], "usage": wire["usage"]})
        for event in events:
            await response.write(f"data: {json.dumps(event)}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def _body(self, http: web.Request) -> dict[str, Any]:
        try:
            body = json.loads(await http.read())
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequest(f"request body is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise BadRequest(f"request body must be a JSON object, got {type(body).__name__}")
        return body

    def _requests(self, body: dict[str, Any], chat: bool) -> tuple[str, list[CompletionRequest]]:
        model = body.get("model")
        if not isinstance(model, str):
            raise BadRequest("'model' is required and must be a string", param="model")
        if model not in self.backends:
            raise BadRequest(f"unknown model {model!r}; known: {sorted(self.backends)}", 404, "model")
        if not isinstance(body.get("stream", False), bool):
            raise BadRequest(f"'stream' must be a boolean, got {body['stream']!r}", param="stream")
        n = body.get("n", 1)
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 16:
            raise BadRequest(f"'n' must be an integer in 1..16, got {n!r}", param="n")
        messages: tuple[ChatMessage, ...] = ()
        prompt: str | None = None
        if chat:
            raw = body.get("messages")
            if not isinstance(raw, list) or not raw:
                raise BadRequest("'messages' must be a non-empty list", param="messages")
            messages = tuple(self._message(m, i) for i, m in enumerate(raw))
            text = messages[-1].content
        else:
            prompt = body.get("prompt")
            if isinstance(prompt, list) and len(prompt) == 1:
                prompt = prompt[0]
            if not isinstance(prompt, str):
                raise BadRequest("'prompt' must be a string (or a list of one string)", param="prompt")
            text = prompt
        stop = body.get("stop") or ()
        if isinstance(stop, str):
            stop = (stop,)
        if not isinstance(stop, list | tuple):
            raise BadRequest(f"'stop' must be a string or a list of strings, got {stop!r}", param="stop")
        max_tokens = body.get("max_tokens", body.get("max_completion_tokens"))
        meta = self._meta(body.get("slmsim_meta"), text)
        try:
            return model, [
                CompletionRequest(
                    model=model,
                    messages=messages,
                    prompt=prompt,
                    temperature=body.get("temperature", 1.0),
                    max_tokens=max_tokens,
                    stop=tuple(stop),
                    seed=body.get("seed") or 0,
                    sample_index=i,
                    meta=meta,
                )
                for i in range(n)
            ]
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "body"
            raise BadRequest(f"invalid {where}: {first['msg']}", param=where) from None

    @staticmethod
    def _message(raw: Any, index: int) -> ChatMessage:
        where = f"messages[{index}]"
        if not isinstance(raw, dict):
            raise BadRequest(f"{where} must be an object", param=where)
        role = _ROLES.get(raw.get("role"))  # type: ignore[arg-type]
        if role is None:
            raise BadRequest(f"{where}.role {raw.get('role')!r} is not one of {sorted(_ROLES)}", param=where)
        return ChatMessage(role=role, content=_text_of(raw.get("content"), where))  # type: ignore[arg-type]

    def _meta(self, raw: Any, text: str) -> RequestMeta:
        if raw is not None:
            try:
                meta = RequestMeta.model_validate(raw)
            except ValidationError as exc:
                raise BadRequest(f"invalid slmsim_meta: {exc.errors()[0]['msg']}", param="slmsim_meta") from None
        else:
            meta = RequestMeta()
        if meta.problem is None and self.lookup is not None:
            problem = self.lookup.find(text)
            if problem is not None:
                meta = meta.model_copy(update={"problem": problem, "problem_id": problem.id})
        return meta

    def _draw_fault(self) -> str | None:
        f = self.settings.faults
        u = self._rng.random()
        for name, rate in (
            ("rate_limit", f.rate_limit),
            ("server_error", f.server_error),
            ("timeout", f.timeout),
            ("malformed", f.malformed),
            ("drop", self.settings.drop),
        ):
            if u < rate:
                self.counts[name] += 1
                return name
            u -= rate
        return None

    async def _inject(self, fault: str, http: web.Request) -> web.StreamResponse:
        match fault:
            case "drop":
                if http.transport is not None:
                    http.transport.close()
                return web.Response(status=500)  # never reaches the client
            case "rate_limit":
                response = _error(429, "simulated rate limit", "rate_limit_exceeded")
                response.headers["Retry-After"] = f"{self.settings.retry_after_s:g}"
                return response
            case "server_error":
                status = self._rng.choice((500, 503))
                return _error(status, "simulated server error", "server_error")
            case "timeout":
                await asyncio.sleep(self.settings.hang_s)
                return _error(504, "simulated timeout", "timeout")
        return web.Response(status=200, text='{"id": "cmpl-broken", "choices": [{"te', content_type="application/json")

    def _wire(self, model: str, replies: list[Completion], chat: bool) -> dict[str, Any]:
        prompt_tokens = replies[0].usage.prompt_tokens
        completion_tokens = sum(r.usage.completion_tokens for r in replies)
        choices: list[dict[str, Any]] = []
        for i, reply in enumerate(replies):
            finish = "length" if reply.finish_reason.startswith("length") else "stop"
            if chat:
                message = {"role": "assistant", "content": reply.text}
                choices.append({"index": i, "message": message, "finish_reason": finish, "logprobs": None})
            else:
                choices.append({"index": i, "text": reply.text, "finish_reason": finish, "logprobs": None})
        return {
            "id": f"{'chatcmpl' if chat else 'cmpl'}-sim{next(self._ids)}",
            "object": "chat.completion" if chat else "text_completion",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "slmsim-sim",
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }


def sim_backends(cards: Iterable[str], seed: int, time_scale: float) -> dict[str, Backend]:
    """One simulated model per card name (faults are injected by the server, not the sim)."""
    from actors.backends.factory import base_backend

    return {
        card: base_backend(ModelSpec(name=card, backend="sim", card=card, time_scale=time_scale), seed)
        for card in cards
    }


async def start(server: SimServer, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Start ``server`` on ``host:port`` (0 = any free port); returns the runner and the bound port."""
    runner = web.AppRunner(server.app(), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024)
    await site.start()
    bound = runner.addresses[0][1]
    return runner, int(bound)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="slmsim serve-sim", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8088)
    parser.add_argument(
        "--cards", default="Llama-3.1-8B-Instruct,Qwen2.5-7B-Instruct", help="comma-separated model cards to serve"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--latency-s", type=float, default=0.0, help="fixed extra latency per request")
    parser.add_argument("--faults", default="", help="e.g. rate_limit=0.1,server_error=0.05,timeout=0.02")
    parser.add_argument("--time-scale", type=float, default=0.0, help="real s slept per simulated s")
    parser.add_argument("--retry-after-s", type=float, default=1.0, help="Retry-After sent with a 429")
    parser.add_argument("--hang-s", type=float, default=600.0, help="how long an injected timeout hangs")
    parser.add_argument("--no-lookup", action="store_true", help="do not load datasets to find problems")
    return parser


async def serve(args: argparse.Namespace) -> None:
    settings = ServerSettings(
        latency_s=args.latency_s,
        faults=parse_faults(args.faults),
        fault_seed=args.seed,
        retry_after_s=args.retry_after_s,
        hang_s=args.hang_s,
    )
    cards = [c.strip() for c in args.cards.split(",") if c.strip()]
    lookup = None if args.no_lookup else await asyncio.to_thread(load_lookup)
    server = SimServer(sim_backends(cards, args.seed, args.time_scale), settings, lookup)
    runner, port = await start(server, args.host, args.port)
    print(f"serve-sim: {len(cards)} simulated model(s) at http://{args.host}:{port}/v1 (source: sim)", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``slmsim serve-sim``."""
    args = build_parser().parse_args(argv)
    try:
        parse_faults(args.faults)
    except (ValueError, ValidationError) as exc:
        print(f"serve-sim: bad --faults: {exc}", file=sys.stderr)
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
