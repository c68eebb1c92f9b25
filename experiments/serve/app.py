"""The serve-sim server (``SimServer``): sampling semantics, problem lookup, roles, features, stats.

Sampling is a real server's: each call is a fresh sample. With ``seed`` in the request the
output is a pure function of (server seed, model, request, seed); without it, successive
identical requests draw successive samples from a per-(model, prompt) counter under the
server seed (a restarted server with the same ``--seed`` replays the same sequence; the
counter is only touched on the event loop, so concurrent requests never share a sample).
``n > 1`` gives n distinct samples; at T=0 every sample is the greedy one. With
``--workers`` the counter is shared by the worker processes (``counters``).

The hot path is kept cheap (``benchmarks/serve_sim.py`` measures it against the
in-process simulator): what a resent body was read as is cached by the exact body
(``bodies``), a conversation's problem, role and simulator messages by its text, JSON is
read and written by orjson, one sample needs no task, and HTTP is ``http``'s protocol on
a C parser, not a framework (aiohttp cost twice a simulator call a request). (uvloop did
not pay: see docs/serve_sim.md.)
"""

from __future__ import annotations

import asyncio
import itertools
import json
import zlib
from collections import Counter, OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from hashlib import blake2b
from typing import Any
from urllib.parse import unquote

from experiments.serve import features as ft
from experiments.serve.bodies import BodyCache, Parsed
from experiments.serve.counters import LocalCounters, PromptCounters, SharedTally
from experiments.serve.exchange import Request, Response
from experiments.serve.faults import KINDS, FaultInjector, ServerFaults
from experiments.serve.http import HttpServer
from experiments.serve.lookup import ProblemLookup
from experiments.serve.reply import (
    Choice,
    chat_message,
    digest,
    envelope,
    error_response,
    generic,
    json_reply,
    problem_label,
    shape,
    stream,
)
from experiments.serve.roles import extract_answer, infer_meta
from experiments.serve.wire import BadRequest, WireRequest, clip, parse_body, parse_request
from protocols.interfaces import Backend
from protocols.messages import ChatMessage, Completion, CompletionRequest, Failure, RequestMeta

_FAILURE_STATUS = {"rate_limit": 429, "timeout": 504, "client": 400, "malformed": 502}
_SEEDED = 1 << 40
"""Seeded requests draw sample indices at or above this; the per-prompt counter stays below it."""
_HIDDEN = 1 << 50
"""Sample indices of the extra samples behind ``logprobs`` (never returned as a choice)."""
CONFIDENCE_SAMPLES = 8
COUNTER_ENTRIES = 200_000
META_ENTRIES = 8192
MAX_INFLATED = 16 * 1024 * 1024
STAT_NAMES = ("requests", "bad_request", "recognised", "missed", "cached")
"""``cached``: requests whose exact body this process had read before (``bodies``): a benchmark
that resends a fixed set of bodies is at its steady state once every request of a pass is one."""
ROLE_NAMES = ("solver", "aggregator", "debater", "verifier", "judge", "agent")
_ALLOWED = {"/v1/models": "GET", "/v1/chat/completions": "POST", "/v1/completions": "POST",
            "/v1/slmsim/stats": "GET", "/health": "GET"}  # fmt: skip


@dataclass
class ServerSettings:
    """How the server behaves beyond the models it serves."""

    latency_s: float = 0.0
    """Fixed extra latency per request (the benchmark's stand-in for a real server)."""
    faults: ServerFaults = field(default_factory=ServerFaults)
    fault_seed: int = 0
    retry_after_s: float = 1.0
    hang_s: float = 600.0
    """How long an injected timeout hangs before answering 504."""
    seed: int = 0
    """The server seed (also the simulated models' seed), sent as ``CompletionRequest.seed``."""
    read_timeout_s: float = 10.0
    """Request headers (from connection start) or a body not fully received by then get 408 (a slow client)."""
    strict: bool = False
    """An unrecognised prompt gets 422 instead of the generic reply."""
    aliases: dict[str, str] = field(default_factory=dict)
    default_card: str | None = None
    think_tags: bool = False
    """R1-style cards put their reasoning inline in ``<think>`` instead of ``reasoning_content``."""


class SimServer:
    """Serves ``backends`` (model id -> Backend) in the OpenAI wire format (``handle`` is the HTTP handler)."""

    def __init__(
        self,
        backends: Mapping[str, Backend],
        settings: ServerSettings | None = None,
        lookup: ProblemLookup | None = None,
        counters: PromptCounters | None = None,
    ) -> None:
        self.backends = dict(backends)
        self.settings = settings or ServerSettings()
        self.lookup = lookup if lookup is not None else ProblemLookup(())
        for alias, card in self.settings.aliases.items():
            if card not in self.backends:
                raise ValueError(
                    f"--alias {alias}={card}: {card!r} is not a served card; served: {sorted(self.backends)}"
                )
        if self.settings.default_card is not None and self.settings.default_card not in self.backends:
            raise ValueError(f"--default-card {self.settings.default_card!r} is not a served card")
        s = self.settings
        self.faults = FaultInjector(s.faults, s.fault_seed, s.retry_after_s, s.hang_s)
        self._ids = itertools.count()
        self.counters: PromptCounters = counters if counters is not None else LocalCounters(COUNTER_ENTRIES)
        self._metas: OrderedDict[bytes, tuple[RequestMeta, tuple[ChatMessage, ...]]] = OrderedDict()
        self._bodies: BodyCache[Parsed] = BodyCache()
        self.stats: Counter[str] = Counter()
        self.roles: Counter[str] = Counter()
        self.worker = 0
        """This process's worker number (``--workers``): a prefix of reply ids, a row of ``tally``."""
        self.tally: SharedTally | None = None
        self._health = json.dumps({"status": "ok", "models": sorted(self.backends)}).encode()

    def share(self, workers: int) -> None:
        """Before forking ``workers`` processes: the stats become sums over all of them."""
        names = (*STAT_NAMES, *(f"role.{r}" for r in ROLE_NAMES), *(f"fault.{k}" for k in KINDS))
        self.tally = SharedTally(names, workers)

    def become_worker(self, worker: int) -> None:
        """In a forked worker: its own fault stream (seeded by server seed and worker) and id prefix."""
        s = self.settings
        self.worker = worker
        self.faults = FaultInjector(s.faults, hash((s.fault_seed, worker)), s.retry_after_s, s.hang_s)

    def _publish(self) -> None:
        if self.tally is not None:
            flat = {**self.stats, **{f"role.{r}": c for r, c in self.roles.items()}}
            flat.update({f"fault.{k}": c for k, c in self.faults.counts.items()})
            self.tally.publish(self.worker, flat)

    @property
    def counts(self) -> dict[str, int]:
        """Requests, bad requests and injected faults so far."""
        return {**self.faults.counts, "requests": self.stats["requests"], "bad_request": self.stats["bad_request"]}

    async def handle(self, http: Request) -> Response:
        """The HTTP handler: route, answer, and every error as one JSON line labelled ``x-slmsim-source: sim``."""
        try:
            response = await self._route(http)
        except BadRequest as exc:
            response = error_response(exc.status, str(exc), "invalid_request_error", exc.param, exc.code)
        except Exception as exc:  # a bug: still one JSON line, never a traceback page
            response = error_response(500, f"internal error: {type(exc).__name__}", "server_error")
        response.headers.setdefault("x-slmsim-source", "sim")
        return response

    async def _route(self, http: Request) -> Response:
        path, method = http.path, "GET" if http.method == "HEAD" else http.method
        model = path.startswith("/v1/models/") and len(path) > len("/v1/models/")
        allowed = "GET" if model else _ALLOWED.get(path, "")
        if not allowed:
            return error_response(404, "Not Found", "invalid_request_error")
        if method != allowed:
            response = error_response(405, "Method Not Allowed", "invalid_request_error")
            response.headers["Allow"] = allowed
            return response
        if path == "/v1/chat/completions":
            return await self._serve(http, chat=True)
        if path == "/v1/completions":
            return await self._serve(http, chat=False)
        if path == "/health":
            return Response(200, self._health)
        if path == "/v1/models":
            return self.models()
        if path == "/v1/slmsim/stats":
            return self.stats_view()
        return self.model(unquote(path[len("/v1/models/") :]))

    def refused(self, status: int) -> None:
        """A request the HTTP layer answered itself (a body too large or too slow, bad HTTP): a bad request."""
        self.stats["requests"] += 1
        self.stats["bad_request"] += 1
        self._publish()

    @staticmethod
    def _model_entry(name: str) -> dict[str, Any]:
        return {"id": name, "object": "model", "created": 0, "owned_by": "slmsim-sim"}

    def models(self) -> Response:
        names = sorted({*self.backends, *self.settings.aliases})
        return json_reply({"object": "list", "data": [self._model_entry(n) for n in names]})

    def model(self, name: str) -> Response:
        self.resolve(name)
        return json_reply(self._model_entry(name))

    def stats_view(self) -> Response:
        stats, roles, faults = dict(self.stats), dict(self.roles), dict(self.faults.counts)
        workers = 1
        if self.tally is not None:  # every worker's counts, not just this one's
            totals = self.tally.totals()
            workers = self.tally.workers
            stats = {n: totals[n] for n in STAT_NAMES if totals[n]}
            roles = {r: totals[f"role.{r}"] for r in ROLE_NAMES if totals[f"role.{r}"]}
            faults = {k: totals[f"fault.{k}"] for k in KINDS}
        body = {**stats, "roles": roles, "faults": faults, "problems_indexed": len(self.lookup), "workers": workers}
        return json_reply(body)

    def resolve(self, name: str) -> str:
        """The served card for a requested model name (itself, an alias, or the default card)."""
        if name in self.backends:
            return name
        if name in self.settings.aliases:
            return self.settings.aliases[name]
        if self.settings.default_card is not None:
            return self.settings.default_card
        raise BadRequest(
            f"unknown model {clip(name)}; served: {sorted(self.backends)}", 404, "model", "model_not_found"
        )

    def _decode(self, http: Request) -> bytes:
        """The body as sent, inflated if its Content-Encoding says gzip or deflate (checked, not trusted)."""
        raw = http.body
        encoding = http.headers.get("content-encoding", "identity").strip().lower()
        if encoding in ("", "identity"):
            return raw
        if encoding not in ("gzip", "deflate"):
            raise BadRequest(f"Content-Encoding {clip(encoding)} is not supported (gzip, deflate)", 415)
        try:
            inflater = zlib.decompressobj(wbits=31 if encoding == "gzip" else 15)
            body = inflater.decompress(raw, MAX_INFLATED)
        except zlib.error:
            raise BadRequest(f"request body is not valid {encoding} data, as its Content-Encoding claims") from None
        if inflater.unconsumed_tail:
            raise BadRequest(f"request body inflates past {MAX_INFLATED} bytes", 413)
        return body

    async def _meta(self, wire: WireRequest, forced: str | None) -> tuple[RequestMeta, tuple[ChatMessage, ...]]:
        """The request's problem, role and simulator messages; cached by conversation (agents resend prompts)."""
        key = None
        if wire.slmsim_meta is None:
            key = blake2b(_conversation_key(wire, forced).encode(), digest_size=16).digest()
            hit = self._metas.get(key)
            if hit is not None:
                self._metas.move_to_end(key)
                return hit
        if len(wire.text) > 200_000:  # big prompts off the loop, so health checks still answer
            match = await asyncio.to_thread(self.lookup.find_match, wire.text)
        else:
            match = self.lookup.find_match(wire.text)
        parsed = infer_meta(wire, match.problem if match else None, forced), tuple(map(chat_message, wire.messages))
        if key is not None:
            self._metas[key] = parsed
            if len(self._metas) > META_ENTRIES:
                self._metas.popitem(last=False)
        return parsed

    async def _parsed(self, http: Request, chat: bool) -> Parsed:
        """The request read, checked and its conversation understood; cached by the exact body (``bodies``).

        Only accepted bodies are cached (an error is raised again each time, and counted), and
        what is cached is a pure function of the body, the endpoint and the role header under
        this server's fixed settings; the sample counter is still drawn per request.
        """
        forced = http.headers.get("x-slmsim-role")
        key = (self._decode(http), chat, forced)
        hit = self._bodies.get(key)
        if hit is not None:
            self.stats["cached"] += 1
            return hit
        wire = parse_request(parse_body(key[0]), chat)
        card = self.resolve(wire.model)
        meta, messages = await self._meta(wire, forced)
        label = problem_label(meta.problem)
        headers = {"x-slmsim-source": "sim", "x-slmsim-problem": label, "x-slmsim-role": meta.role}
        tokens, wanted = ft.tokens_of(wire.text), ft.wanted_format(wire.text)
        parsed = Parsed(wire, card, meta, messages, digest(card, wire.chat, wire.text), tokens, wanted, headers)
        if wire.slmsim_meta is None:
            self._bodies.put(key, parsed)
        return parsed

    async def _serve(self, http: Request, chat: bool) -> Response:
        try:
            return await self._answer(http, chat)
        finally:
            self._publish()

    async def _answer(self, http: Request, chat: bool) -> Response:
        self.stats["requests"] += 1
        try:
            parsed = await self._parsed(http, chat)
        except BadRequest:
            self.stats["bad_request"] += 1
            raise
        wire, meta = parsed.wire, parsed.meta
        problem = meta.problem
        self.stats["recognised" if problem is not None else "missed"] += 1
        self.roles[meta.role] += 1
        if problem is None and self.settings.strict:
            self.stats["bad_request"] += 1
            raise BadRequest(
                "no known problem found in the prompt (serve-sim --strict)", 422, "messages", "unknown_problem"
            )
        fault = self.faults.draw()
        if fault is not None:
            return await self.faults.serve(fault)
        if self.settings.latency_s > 0:
            await asyncio.sleep(self.settings.latency_s)
        result = await self._choices(parsed, meta)
        if isinstance(result, Failure):
            return error_response(_FAILURE_STATUS.get(result.error, 500), result.message[:300], result.error)
        choices, prompt_tokens = result
        wire_body = envelope(wire, choices, prompt_tokens, f"{self.worker}-{next(self._ids)}")
        headers = dict(parsed.headers)
        if wire.stream:
            return stream(wire, wire_body, headers)
        return json_reply(wire_body, headers=headers)

    # --- sampling ------------------------------------------------------------------

    def sample_indices(self, wire: WireRequest, card: str, prompt_key: int | None = None) -> list[int]:
        """Sample indices for the request's n choices (see the module doc); ``prompt_key`` is
        ``digest(card, wire.chat, wire.text)`` when the caller already has it."""
        if wire.seed is not None:
            return [_SEEDED + digest("seed", wire.seed, j) % _SEEDED for j in range(wire.n)]
        key = digest(card, wire.chat, wire.text) if prompt_key is None else prompt_key
        start = self.counters.take(key, wire.n)
        return list(range(start, start + wire.n))

    def _request(
        self, wire: WireRequest, card: str, meta: RequestMeta, messages: tuple[ChatMessage, ...], index: int
    ) -> CompletionRequest:
        return CompletionRequest(  # validated: model_construct measured twice as slow (9 us vs 4)
            model=card,
            messages=messages,
            prompt=wire.prompt,
            temperature=wire.temperature,
            max_tokens=wire.max_tokens,
            seed=self.settings.seed,
            sample_index=index,
            meta=meta,
        )

    async def _choices(self, parsed: Parsed, meta: RequestMeta) -> tuple[list[Choice], int] | Failure:
        wire, card, prompt_tokens = parsed.wire, parsed.card, parsed.prompt_tokens
        problem = meta.problem
        if problem is None:
            return [generic(wire, card, meta, f"call_{next(self._ids)}") for _ in range(wire.n)], prompt_tokens
        if meta.role == "agent" and wire.tool_choice == "none":
            meta = meta.model_copy(update={"tools_called": (*meta.tools_called, *meta.tools)})
        indices = self.sample_indices(wire, card, parsed.prompt_key)
        requests = [self._request(wire, card, meta, parsed.messages, i) for i in indices]
        backend = self.backends[card]
        if len(requests) == 1:  # the common case: no task, no gather
            replies: list[Completion | Failure] = [await backend.complete(requests[0])]
        else:
            replies = list(await asyncio.gather(*(backend.complete(r) for r in requests)))
        for reply in replies:
            if isinstance(reply, Failure):
                return reply
        completions = [r for r in replies if isinstance(r, Completion)]
        shares: dict[str, float] = {}
        if wire.logprobs:
            shares = await self._shares(backend, requests[0], problem.answer_format)
        think = self.settings.think_tags
        pairs = zip(completions, requests, strict=True)
        choices = [shape(wire, card, meta, c, shares, r.sample_index, parsed.wanted, think) for c, r in pairs]
        return choices, max(prompt_tokens, completions[0].usage.prompt_tokens)

    async def _shares(self, backend: Backend, first: CompletionRequest, fmt: str) -> dict[str, float]:
        """The model's consistency: the share of hidden extra samples giving each answer."""
        hidden = [
            first.model_copy(update={"sample_index": _HIDDEN + digest("hidden", first.sample_index, j) % _HIDDEN})
            for j in range(CONFIDENCE_SAMPLES)
        ]
        replies = await asyncio.gather(*(backend.complete(r) for r in hidden))
        answers = [extract_answer(r.text, fmt) for r in replies if isinstance(r, Completion)]
        counts = Counter(a for a in answers if a is not None)
        return {a: (c + 0.5) / (len(hidden) + 1) for a, c in counts.items()}


def _conversation_key(wire: WireRequest, forced: str | None) -> str:
    """What the role and problem depend on: the text, the turns' roles and tool calls, the tools offered."""
    tools = json.dumps([wire.tool_names, wire.tool_choice]) if wire.tools else ""
    calls = json.dumps([m.tool_calls for m in wire.messages]) if any(m.tool_calls for m in wire.messages) else ""
    roles = ",".join(m.role for m in wire.messages)
    return f"{wire.chat}\x1f{forced}\x1f{tools}\x1f{calls}\x1f{roles}\x1f{wire.text}"


async def start(server: SimServer, host: str, port: int, reuse_port: bool = False) -> tuple[HttpServer, int]:
    """Start ``server`` on ``host:port`` (0 = any free port): the runner (``await runner.cleanup()`` stops
    it) and the bound port."""
    runner = HttpServer(server.handle, server.settings.read_timeout_s, server.refused)
    bound = await runner.start(host, port, reuse_port=reuse_port)
    return runner, bound
