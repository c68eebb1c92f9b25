"""The ``openai`` backend: any OpenAI-compatible HTTP server, over a lean HTTP/1.1 client (``http1``).

OpenRouter, OpenAI, vLLM, SGLang, Ollama, llama.cpp and ``slmsim serve-sim`` all
speak this wire format. One call = one HTTP request; retries, rate limits and
recording are wrappers around this class (``actors.backends.wrappers``/``store``).
The API key is read from the environment variable the spec *names*; its value is
never put in a message, a log line or a result (``scrub`` removes it from error text).
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import math
import os
import time
from typing import Any

import orjson

from actors.backends.aiohttp_pool import AiohttpPool
from actors.backends.http1 import BadReply, Http1Pool
from protocols.config import ModelSpec
from protocols.messages import ChatMessage, Completion, CompletionRequest, Failure, FailureKind, Source, Usage

_ERROR_BODY_CHARS = 300


def render_prompt(messages: tuple[ChatMessage, ...]) -> str:
    """Chat turns as one plain prompt, for a completions endpoint (a base model has no template)."""
    if len(messages) == 1 and messages[0].role == "user":
        return messages[0].content
    parts = [f"{m.role.capitalize()}: {m.content}" for m in messages]
    return "\n\n".join([*parts, "Assistant:"])


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def wire_seed(request: CompletionRequest) -> int:
    """The ``seed`` sent for a request: one independent draw per (run seed, model, content, sample).

    A server that honours ``seed`` (llama.cpp, vLLM, serve-sim, OpenAI's best effort) returns
    the same text for the same seed, so the seed must name the draw. Keyed by the sample index
    alone, sample j would reuse one random stream on every problem and the samples at one index
    would be correlated across problems (the first Gemma pool: sample 0 right on 37.5% of
    problems, sample 1 on 2.5%). So the seed is a stable hash (sha256, not Python's salted
    ``hash``) of the run seed, the model's name, the messages or prompt and the sample index:
    reproducible across processes, distinct across problems, models and samples, and the same
    for a retry, which resends the same request. Sampling parameters (temperature, max_tokens,
    stop) are left out on purpose: they change how a draw is used, not which draw it is, so runs
    at two temperatures share their random streams (common random numbers). Every field here is
    in the response store's key, so a recorded response always belongs to one wire seed.
    """
    fields = {
        "seed": request.seed,
        "model": request.model,
        "messages": [[m.role, m.content] for m in request.messages],
        "prompt": request.prompt,
        "sample_index": request.sample_index,
    }
    texts = [request.model, request.prompt or "", *(m.content for m in request.messages)]
    digest = hashlib.sha256(_canonical(fields, texts)).digest()
    # 31 bits: llama.cpp takes a uint32 and some servers an int32; -1 would mean "random".
    return int.from_bytes(digest[:8], "big") % (2**31 - 1)


def _canonical(fields: dict[str, Any], texts: list[str]) -> bytes:
    """``json.dumps(fields, sort_keys=True, separators=(",", ":"))`` as UTF-8: the bytes ``wire_seed`` hashes.

    orjson writes the same bytes about five times faster when every string is printable
    ASCII (plus the escapes both write alike: quote, backslash, ``\\n``, ``\\r``, ``\\t``...);
    ``json`` escapes DEL and everything past ASCII as ``\\uXXXX`` where orjson writes it raw,
    so any other text (``texts``: every free string of ``fields``) goes through ``json``.
    ``test_wire_seed_canonical_bytes_are_json_dumps`` checks the two agree.
    """
    if all(text.isascii() and "\x7f" not in text for text in texts):
        return orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)
    return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _dumps(body: dict[str, Any]) -> bytes:
    """A request body as JSON bytes: orjson, not stdlib ``json`` (what aiohttp's ``json=`` used), at
    a fifth of the CPU; the same JSON, compact and with non-ASCII text raw UTF-8. Text orjson
    refuses (a lone surrogate) goes through ``json`` as before."""
    try:
        return orjson.dumps(body)
    except orjson.JSONEncodeError:
        return json.dumps(body).encode("utf-8")


def _loads(raw: bytes) -> Any:
    """``json.loads(raw)``, by orjson when it can: several times faster. What orjson refuses and
    ``json`` reads (NaN, Infinity, a lone surrogate) goes to ``json``, so no reply that parsed
    before is malformed now (orjson reads an integer past 64 bits as a float)."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)


def served_source(headers: Any, data: dict[str, Any]) -> Source:
    """``sim-served`` when the server says it is slmsim's simulator, else ``live``.

    serve-sim sends ``x-slmsim-source: sim`` and ``system_fingerprint: slmsim-sim``; either
    is enough (a proxy may drop the header). Any other server is a real model: ``live``.
    """
    if str(headers.get("x-slmsim-source", "")).lower() == "sim":
        return "sim-served"
    fingerprint = data.get("system_fingerprint")
    if isinstance(fingerprint, str) and fingerprint.startswith("slmsim-"):
        return "sim-served"
    return "live"


def cost_of(spec: ModelSpec, usage: Usage) -> float:
    """USD for ``usage`` at the spec's per-million-token prices (0 without a price table)."""
    if spec.price is None:
        return 0.0
    return (usage.prompt_tokens * spec.price.input + usage.completion_tokens * spec.price.output) / 1e6


class OpenAIBackend:
    """Calls ``{base_url}/chat/completions`` or ``{base_url}/completions`` per ``spec.endpoint``.

    The HTTP pool (``http1.Http1Pool``) is created lazily on first use, inside the running
    loop (the backend lives in a Ray actor process), as large as ``spec.max_in_flight``, so
    no smaller default cap (aiohttp's was 100) throttles silently.
    """

    def __init__(self, spec: ModelSpec) -> None:
        if not spec.base_url:
            raise ValueError(f"model {spec.name!r}: the openai backend needs base_url")
        self.spec = spec
        self.url = spec.base_url.rstrip("/") + ("/chat/completions" if spec.endpoint == "chat" else "/completions")
        self.model_id = spec.model_id or spec.name
        self._key = self._read_key(spec)
        self._pool: Http1Pool | AiohttpPool | None = None

    @staticmethod
    def _read_key(spec: ModelSpec) -> str | None:
        if spec.api_key_env is None:
            return None
        key = os.environ.get(spec.api_key_env)
        if not key:
            raise ValueError(
                f"model {spec.name!r}: environment variable {spec.api_key_env!r} (api_key_env) is not set or empty"
            )
        return key

    def scrub(self, text: str) -> str:
        """``text`` with the API key (if any) replaced, for anything that leaves this object."""
        return text.replace(self._key, "***") if self._key else text

    def _pool_now(self) -> Http1Pool | AiohttpPool:
        if self._pool is None or self._pool.closed:
            headers = {"Content-Type": "application/json"}
            if self._key:
                headers["Authorization"] = f"Bearer {self._key}"
            client = AiohttpPool if self.spec.http_client == "aiohttp" else Http1Pool
            self._pool = client(self.url, headers, self.spec.max_in_flight)
        return self._pool

    def body(self, request: CompletionRequest) -> dict[str, Any]:
        """The JSON body sent for ``request`` (no key, no meta: real servers ignore both)."""
        body: dict[str, Any] = {
            "model": self.model_id,
            "temperature": request.temperature,
            "seed": wire_seed(request),
            "n": 1,
        }
        if self.spec.endpoint == "chat":
            messages = request.messages or (ChatMessage(role="user", content=request.prompt or ""),)
            body["messages"] = [{"role": m.role, "content": m.content} for m in messages]
        else:
            body["prompt"] = request.prompt if request.prompt is not None else render_prompt(request.messages)
        if request.max_tokens is not None:
            body["max_tokens"] = request.max_tokens
        if request.stop:
            body["stop"] = list(request.stop)
        return body

    def _failure(self, error: FailureKind, message: str, retryable: bool, retry_after: float | None = None) -> Failure:
        return Failure(
            error=error,
            message=self.scrub(f"{self.spec.name!r} at {self.url}: {message}"),
            retryable=retryable,
            model=self.spec.name,
            retry_after_s=retry_after,
        )

    async def complete(self, request: CompletionRequest) -> Completion | Failure:
        pool = self._pool_now()
        started = time.perf_counter()
        try:
            reply = await pool.post(_dumps(self.body(request)), self.spec.timeout_s)
        except TimeoutError:
            return self._failure("timeout", f"no reply within {self.spec.timeout_s}s", True)
        except (OSError, BadReply) as exc:
            return self._failure("connection", f"{type(exc).__name__}: {exc}", True)
        latency = time.perf_counter() - started
        if reply.status != 200:
            retry_after = parse_retry_after(reply.headers.get("retry-after"))
            return self._status_failure(reply.status, reply.body, retry_after, reply.headers.get("location"))
        return self._parse(reply.body, latency, request, reply.headers)

    def _status_failure(
        self, status: int, raw: bytes, retry_after: float | None, location: str | None = None
    ) -> Failure:
        excerpt = raw[:_ERROR_BODY_CHARS].decode("utf-8", "replace")
        message = f"HTTP {status}: {excerpt}"
        if status == 429:
            return self._failure("rate_limit", message, True, retry_after)
        if status == 408:
            return self._failure("timeout", message, True, retry_after)
        if status >= 500:
            return self._failure("server", message, True, retry_after)
        if 300 <= status < 400:  # only http1 gets here: aiohttp follows redirects itself
            message = (
                f"HTTP {status}: redirected to {location or '(no Location)'}; the http1 client follows no"
                " redirects: set base_url to the new address, or http_client: aiohttp"
            )
        return self._failure("client", message, False)

    def _parse(self, raw: bytes, latency: float, request: CompletionRequest, headers: Any) -> Completion | Failure:
        try:
            data = _loads(raw)
            choice = data["choices"][0]
            text = (choice["message"].get("content") or "") if self.spec.endpoint == "chat" else choice["text"]
            if not isinstance(text, str):
                raise TypeError(f"text is {type(text).__name__}, not str")
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            excerpt = raw[:_ERROR_BODY_CHARS].decode("utf-8", "replace")
            return self._failure("malformed", f"unreadable reply ({exc!r}): {excerpt!r}", True)
        finish = str(choice.get("finish_reason") or "stop")
        usage_raw = data.get("usage") or {}
        try:
            usage = Usage(
                prompt_tokens=int(usage_raw["prompt_tokens"]),
                completion_tokens=int(usage_raw["completion_tokens"]),
            )
        except (KeyError, TypeError, ValueError):
            # No usage from the server: estimate (4 chars a token) and say so.
            prompt_chars = len(request.prompt or "") + sum(len(m.content) for m in request.messages)
            usage = Usage(prompt_tokens=prompt_chars // 4, completion_tokens=max(1, len(text) // 4))
            finish = f"{finish}+usage_estimated"
        return Completion(
            model=self.spec.name,
            text=text,
            usage=usage,
            latency_s=latency,
            cost_usd=cost_of(self.spec, usage),
            finish_reason=finish,
            source=served_source(headers, data),
        )

    async def aclose(self) -> None:
        """Close the HTTP pool (and its kept-alive connections)."""
        if self._pool is not None:
            await self._pool.close()
        self._pool = None

    def __repr__(self) -> str:
        # Never the key: only where it comes from.
        return f"OpenAIBackend(model={self.spec.name!r}, url={self.url!r}, key_env={self.spec.api_key_env!r})"
