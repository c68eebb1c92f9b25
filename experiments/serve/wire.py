"""The OpenAI wire format as serve-sim reads it: one request body -> a typed ``WireRequest``, or a 4xx.

Every malformed request is a ``BadRequest`` (a JSON 4xx in the OpenAI error shape), never a
500: bodies that are not UTF-8 JSON objects, lone surrogates, nesting deeper than
``MAX_DEPTH``, fields of the wrong type, unknown fields (as OpenAI does: "Unrecognized
request argument"). Error messages quote client values only through ``clip``, so a
megabyte ``model`` field is never echoed back.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import orjson

MAX_DEPTH = 64
"""Deepest JSON nesting accepted (real request bodies need about 8)."""
MAX_PROMPT_CHARS = 1_000_000
"""Longest conversation served (about 250k tokens); longer ones are refused as too long for the context."""
MAX_N = 16
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")

ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant", "tool": "tool"}
NO_EFFECT = frozenset(
    {"top_p", "presence_penalty", "frequency_penalty", "user", "logit_bias", "parallel_tool_calls", "metadata"}
    | {"store", "service_tier", "top_k", "min_p", "repetition_penalty", "stream_options", "reasoning_effort"}
)
"""Accepted fields the simulator has no model of (documented in docs/serve_sim.md), so they change nothing."""
CHAT_FIELDS = frozenset(
    {"model", "messages", "temperature", "max_tokens", "max_completion_tokens", "n", "seed", "stop", "stream"}
    | {"tools", "tool_choice", "response_format", "logprobs", "top_logprobs", "slmsim_meta"}
)
COMPLETION_FIELDS = frozenset(
    {"model", "prompt", "temperature", "max_tokens", "n", "seed", "stop", "stream", "logprobs", "echo"}
    | {"best_of", "suffix", "slmsim_meta"}
)


class BadRequest(Exception):
    """A client error: becomes a 4xx JSON reply."""

    def __init__(self, message: str, status: int = 400, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.param = param
        self.code = code


def clip(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters: what an error message may quote of client input."""
    text = repr(value) if not isinstance(value, str) else repr(value[: limit + 1])
    return text if len(text) <= limit else text[:limit] + f"...({len(str(value))} chars)"


def error_body(
    status: int, message: str, kind: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """The OpenAI error shape."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code or status}}


def depth_of(value: Any, limit: int) -> int:
    """The nesting depth of a parsed JSON value, counted without recursion (stops past ``limit``)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > deepest:
            deepest = depth
            if deepest > limit:
                return deepest
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return deepest


def parse_body(raw: bytes) -> dict[str, Any]:
    """A request body as a JSON object, or ``BadRequest`` naming what is wrong with it.

    orjson parses the common case several times faster; whatever it refuses (NaN, numbers
    past 64 bits, a lone surrogate, bad UTF-8, nesting past 1024) goes through ``json``, so
    what is accepted and every error message stay the standard library's.
    """
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = _stdlib_loads(raw)
    if not isinstance(body, dict):
        raise BadRequest(f"request body must be a JSON object, got {type(body).__name__}")
    # Skipped when the raw bytes rule the problem out (the common case).
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and depth_of(body, MAX_DEPTH) > MAX_DEPTH:
        raise BadRequest(f"request body nests deeper than {MAX_DEPTH} levels")
    return body


def _stdlib_loads(raw: bytes) -> Any:
    try:
        body = json.loads(raw)
    except RecursionError:
        raise BadRequest(f"request body nests deeper than {MAX_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"request body is not valid JSON: {str(exc)[:120]}") from None
    if _SURROGATE_ESCAPE.search(raw):  # UTF-8 bytes cannot hold a surrogate; only a \uD800-\uDFFF escape can
        try:
            json.dumps(body, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise BadRequest("request body holds a lone UTF-16 surrogate (e.g. \\ud800), which is not text") from None
    return body


@dataclass(frozen=True)
class WireMessage:
    """One chat turn as sent: text content, plus the tool calls or tool result it carries."""

    role: str
    content: str
    tool_calls: tuple[dict[str, Any], ...] = ()
    tool_call_id: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class WireRequest:
    """A validated request body (chat or completions)."""

    model: str
    chat: bool
    messages: tuple[WireMessage, ...]
    prompt: str | None
    temperature: float
    max_tokens: int | None
    n: int
    seed: int | None
    stop: tuple[str, ...]
    stream: bool
    include_usage: bool
    tools: tuple[dict[str, Any], ...] = ()
    tool_choice: str | dict[str, Any] = "auto"
    response_format: dict[str, Any] = field(default_factory=lambda: {"type": "text"})
    logprobs: bool = False
    top_logprobs: int = 0
    slmsim_meta: Any = None
    text: str = ""
    """The whole conversation as one text (what the lookup searches): set by ``parse_request``
    (a plain field, since ``functools.cached_property`` took a lock on every first read)."""

    @property
    def tool_names(self) -> tuple[str, ...]:
        return tuple(t["function"]["name"] for t in self.tools)


def _text_of(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: keep the text ones
        parts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        if len(parts) == len(content) and all(isinstance(p, str) for p in parts):
            return "".join(parts)  # type: ignore[arg-type]
        raise BadRequest(f"{where}.content: only text parts are supported", param=f"{where}.content")
    raise BadRequest(f"{where}.content must be a string or a list of text parts", param=f"{where}.content")


def _tool_calls(raw: Any, where: str) -> tuple[dict[str, Any], ...]:
    if not isinstance(raw, list):
        raise BadRequest(f"{where}.tool_calls must be a list", param=f"{where}.tool_calls")
    calls = []
    for j, call in enumerate(raw):
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not isinstance(fn.get("arguments"), str):
            raise BadRequest(
                f"{where}.tool_calls[{j}] needs function.name and function.arguments (strings)",
                param=f"{where}.tool_calls",
            )
        calls.append({"id": str(call.get("id", "")), "name": fn["name"], "arguments": fn["arguments"]})
    return tuple(calls)


def parse_message(raw: Any, index: int) -> WireMessage:
    """One entry of ``messages``."""
    where = f"messages[{index}]"
    if not isinstance(raw, dict):
        raise BadRequest(f"{where} must be an object", param=where)
    given = raw.get("role")
    role = ROLES.get(given) if isinstance(given, str) else None
    if role is None:
        raise BadRequest(f"{where}.role {clip(given)} is not one of {sorted(ROLES)}", param=f"{where}.role")
    tool_calls: tuple[dict[str, Any], ...] = ()
    if role == "assistant" and raw.get("tool_calls") is not None:
        tool_calls = _tool_calls(raw["tool_calls"], where)
    content = raw.get("content")
    text = "" if content is None and (tool_calls or role == "assistant") else _text_of(content, where)
    tool_call_id = raw.get("tool_call_id")
    if role == "tool" and not isinstance(tool_call_id, str):
        raise BadRequest(f"{where}: a tool message needs tool_call_id (a string)", param=f"{where}.tool_call_id")
    name = raw.get("name")
    return WireMessage(role, text, tool_calls, tool_call_id, name if isinstance(name, str) else None)


def _stop(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        return (raw,) if raw else ()
    if isinstance(raw, list) and len(raw) <= 4 and all(isinstance(s, str) for s in raw):
        return tuple(s for s in raw if s)
    raise BadRequest(f"'stop' must be a string or a list of up to 4 strings, got {clip(raw)}", param="stop")


def _ranged(body: dict[str, Any], name: str, kinds: type | tuple[type, ...], lo: float, hi: float) -> Any:
    """``body[name]`` if it is of ``kinds`` (never a bool) within [lo, hi]; None if absent or null."""
    value: Any = body.get(name)
    typed = value is not None and not isinstance(value, bool) and isinstance(value, kinds)
    if value is not None and not (typed and lo <= body[name] <= hi):
        span = f"an integer in [{lo}, {hi}]" if kinds is int else f"a number in [{lo:g}, {hi:g}]"
        raise BadRequest(f"'{name}' must be {span}, got {clip(value)}", param=name)
    return value


def _number(body: dict[str, Any], name: str, default: float, lo: float, hi: float) -> float:
    value = _ranged(body, name, (int, float), lo, hi)
    return default if value is None else float(value)


def _int(body: dict[str, Any], name: str, lo: int, hi: int) -> int | None:
    value: int | None = _ranged(body, name, int, lo, hi)
    return value


def _tools(body: dict[str, Any]) -> tuple[tuple[dict[str, Any], ...], str | dict[str, Any]]:
    raw = body.get("tools")
    if raw is None and "tool_choice" not in body:  # the common case, answered without the checks below
        return (), "none"
    tools: list[dict[str, Any]] = []
    if raw is not None:
        if not isinstance(raw, list):
            raise BadRequest("'tools' must be a list", param="tools")
        for i, tool in enumerate(raw):
            fn = tool.get("function") if isinstance(tool, dict) else None
            if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(fn, dict):
                raise BadRequest(f"tools[{i}] must be {{'type': 'function', 'function': {{...}}}}", param=f"tools[{i}]")
            if not isinstance(fn.get("name"), str) or not fn["name"]:
                raise BadRequest(f"tools[{i}].function.name must be a non-empty string", param=f"tools[{i}]")
            params = fn.get("parameters", {"type": "object", "properties": {}})
            if not isinstance(params, dict):
                raise BadRequest(f"tools[{i}].function.parameters must be a JSON schema object", param=f"tools[{i}]")
            tools.append({"type": "function", "function": {**fn, "parameters": params}})
    choice = body.get("tool_choice", "auto" if tools else "none")
    names = {t["function"]["name"] for t in tools}
    if isinstance(choice, str):
        if choice not in ("none", "auto", "required"):
            raise BadRequest(
                f"'tool_choice' {clip(choice)} is not none/auto/required or a named tool", param="tool_choice"
            )
        if choice == "required" and not tools:
            raise BadRequest("'tool_choice' is 'required' but no 'tools' were given", param="tool_choice")
    elif isinstance(choice, dict):
        fn = choice.get("function")
        name = fn.get("name") if isinstance(fn, dict) else None
        if name not in names:
            raise BadRequest(f"'tool_choice' names {clip(name)}, which is not in 'tools'", param="tool_choice")
        choice = {"name": name}
    else:
        raise BadRequest("'tool_choice' must be a string or an object", param="tool_choice")
    return tuple(tools), choice


def _response_format(raw: Any) -> dict[str, Any]:
    if raw is None:
        return {"type": "text"}
    kind = raw.get("type") if isinstance(raw, dict) else None
    if kind in ("text", "json_object"):
        return {"type": kind}
    if kind == "json_schema":
        spec = raw.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise BadRequest("response_format.json_schema.schema must be a JSON schema object", param="response_format")
        return {"type": "json_schema", "schema": schema, "name": spec.get("name")}  # type: ignore[union-attr]
    raise BadRequest(f"response_format.type {clip(kind)} is not text/json_object/json_schema", param="response_format")


def parse_request(body: dict[str, Any], chat: bool) -> WireRequest:
    """Validate a parsed body; ``model`` is returned as given (aliases are resolved by the server)."""
    allowed = CHAT_FIELDS if chat else COMPLETION_FIELDS
    for name in body:
        if name not in allowed and name not in NO_EFFECT:
            raise BadRequest(f"unsupported request field {clip(name)} for this endpoint", param=str(name)[:60])
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("'model' is required and must be a string", param="model")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise BadRequest(f"'stream' must be a boolean, got {clip(stream)}", param="stream")
    options = body.get("stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    n = _int(body, "n", 1, MAX_N) or 1
    seed = _int(body, "seed", -(2**63), 2**63 - 1)
    temperature = _number(body, "temperature", 1.0, 0.0, 2.0)
    max_tokens = _int(body, "max_completion_tokens", 1, 10**7) or _int(body, "max_tokens", 1, 10**7)
    messages: tuple[WireMessage, ...] = ()
    prompt: str | None = None
    tools: tuple[dict[str, Any], ...] = ()
    tool_choice: str | dict[str, Any] = "none"
    logprobs = False
    top = 0
    if chat:
        raw = body.get("messages")
        if not isinstance(raw, list) or not raw:
            raise BadRequest("'messages' must be a non-empty list", param="messages")
        messages = tuple(parse_message(m, i) for i, m in enumerate(raw))
        tools, tool_choice = _tools(body)
        given = body.get("logprobs", False)
        if not isinstance(given, bool):
            raise BadRequest(f"'logprobs' must be a boolean, got {clip(given)}", param="logprobs")
        logprobs = given
        top = _int(body, "top_logprobs", 0, 20) or 0
        if top and not logprobs:
            raise BadRequest("'top_logprobs' needs 'logprobs': true", param="top_logprobs")
        response_format = _response_format(body.get("response_format"))
    else:
        prompt = body.get("prompt")
        if isinstance(prompt, list) and len(prompt) == 1:
            prompt = prompt[0]
        if not isinstance(prompt, str):
            raise BadRequest("'prompt' must be a string (or a list of one string)", param="prompt")
        if body.get("echo") not in (None, False):
            raise BadRequest("'echo' is not supported", param="echo")
        if body.get("suffix") not in (None, ""):
            raise BadRequest("'suffix' is not supported", param="suffix")
        if body.get("best_of") not in (None, 1):
            raise BadRequest("'best_of' > 1 is not supported; use 'n'", param="best_of")
        top = _int(body, "logprobs", 0, 5) or 0
        logprobs = body.get("logprobs") is not None
        response_format = {"type": "text"}
    request = WireRequest(
        model=model,
        chat=chat,
        messages=messages,
        prompt=prompt,
        temperature=temperature,
        max_tokens=max_tokens,
        n=n,
        seed=seed,
        stop=_stop(body.get("stop")),
        stream=stream,
        include_usage=include_usage,
        tools=tools,
        tool_choice=tool_choice,
        response_format=response_format,
        logprobs=logprobs,
        top_logprobs=top,
        slmsim_meta=body.get("slmsim_meta"),
        text=prompt if prompt is not None else "\n\n".join(m.content for m in messages),
    )
    size = len(request.text)
    if size > MAX_PROMPT_CHARS:
        raise BadRequest(
            f"the conversation is {size} characters, over this server's context limit of {MAX_PROMPT_CHARS}",
            param="prompt" if prompt is not None else "messages",
            code="context_length_exceeded",
        )
    return request
