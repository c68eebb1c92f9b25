"""A reply of serve-sim: a simulated completion shaped for the request's features, then the wire format.

``shape`` applies the features (see ``features``) to one simulated completion; ``generic``
is the honest reply to a prompt about no known problem; ``envelope`` and ``stream`` write
the OpenAI JSON body or its server-sent events.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from hashlib import blake2b
from typing import Any

import orjson

from experiments.serve import features as ft
from experiments.serve.exchange import Response
from experiments.serve.roles import extract_answer, structured_output
from experiments.serve.wire import WireRequest, error_body
from protocols.messages import ChatMessage, Completion, Problem, RequestMeta

GENERIC = (
    "This is serve-sim, a simulated model ({model}). The prompt matches no problem the simulator "
    "knows, so it has no simulated answer to give. Load your problems with --problems FILE, or "
    "send slmsim_meta with the problem."
)


def json_reply(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON reply, encoded by orjson (the stdlib encoder was a tenth of a reply's cost)."""
    return Response(status, orjson.dumps(body), headers)


def error_response(status: int, message: str, kind: str, param: str | None = None, code: str | None = None) -> Response:
    """A JSON error reply in the OpenAI shape."""
    return json_reply(error_body(status, message, kind, param, code), status)


@dataclass
class Choice:
    """One choice of a reply, before it is written in the wire format."""

    content: str | None
    finish: str
    reasoning: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    logprobs: dict[str, Any] | None = None

    @property
    def tokens(self) -> int:
        calls = sum(len(c["function"]["name"]) + len(c["function"]["arguments"]) for c in self.tool_calls or [])
        return ft.tokens_in(len(self.content or "") + len(self.reasoning or "") + calls)  # no copy of the text


def shape(
    wire: WireRequest,
    card: str,
    meta: RequestMeta,
    reply: Completion,
    shares: dict[str, float],
    index: int,
    wanted: str | None,
    think_tags: bool = False,
) -> Choice:
    """A simulated completion as the request's features want it (see ``features``); ``wanted`` is
    the answer format the prompt asks for (``ft.wanted_format(wire.text)``, read once per body)."""
    problem = meta.problem
    assert problem is not None
    text = ft.reformat(reply.text, wanted)
    finish = "length" if reply.finish_reason.startswith("length") else "stop"
    call_id = f"call_{digest('call', index, text) % 10**12}" if wire.tools else ""
    if structured_output(wire):
        tool = next(t for t in wire.tools if t["function"]["name"] == wire.tool_choice["name"])  # type: ignore[index]
        answer = extract_answer(text, problem.answer_format)
        why = ft.filler(400, "why", card, index)
        return Choice(None, "tool_calls", tool_calls=[ft.tool_call(tool, None, call_id, answer, why)])
    if meta.role == "agent" and wire.tools:
        name, final = ft.parse_react(text)
        if isinstance(wire.tool_choice, dict):
            name = wire.tool_choice["name"]
        elif wire.tool_choice == "required" and name is None:
            name = wire.tools[0]["function"]["name"]
        tools = {t["function"]["name"]: t for t in wire.tools}
        if name in tools and wire.tool_choice != "none":
            call = ft.tool_call(tools[name], problem.question, call_id)
            return Choice(None, "tool_calls", tool_calls=[call])
        if final is not None:
            text = final
    # Only JSON replies and logprobs need the answer; grading every text cost a fifth of a reply.
    wants_answer = wire.logprobs or wire.response_format["type"] != "text"
    answer = extract_answer(text, problem.answer_format) if wants_answer else None
    filler, text = ft.pad(text, reply.usage.completion_tokens, (card, index, problem.id))
    if wire.response_format["type"] != "text":
        schema = wire.response_format.get("schema")
        if schema is None:  # json_object: the natural keys; a reply that reached no answer says null
            value: Any = {"reasoning": filler[:400], "answer": answer}
        else:
            value = ft.fill_schema(schema, answer=answer, reasoning=filler[:400])
        return Choice(json.dumps(value), finish)
    reasoning: str | None = None
    if ft.is_reasoning_card(card):
        head, _, last = text.rpartition("\n")
        thought = f"{head}\n{filler}".strip()
        if think_tags:
            text = f"<think>\n{thought}\n</think>\n\n{last}"
        else:
            reasoning, text = thought, last
    else:
        text = ft.join_padding(filler, text)
    text, stopped = ft.cut_at_stop(text, wire.stop)
    if stopped:
        finish = "stop"
    logprobs = None
    if wire.logprobs:
        top = wire.top_logprobs
        logprobs = (ft.chat_logprobs if wire.chat else ft.completion_logprobs)(text, answer, shares, top)
    return Choice(text, finish, reasoning=reasoning, logprobs=logprobs)


def generic(wire: WireRequest, card: str, meta: RequestMeta, call_id: str) -> Choice:
    """An honest reply to a prompt about no known problem (never a made-up answer)."""
    uncalled = [t for t in wire.tools if t["function"]["name"] not in meta.tools_called]
    forced = wire.tool_choice
    tools = {t["function"]["name"]: t for t in wire.tools}
    pick = None
    if isinstance(forced, dict):
        pick = tools[forced["name"]]
    elif forced == "required":
        pick = (uncalled or list(wire.tools))[0]
    elif forced == "auto" and uncalled:
        pick = uncalled[0]
    if pick is not None:
        query = next((m.content for m in reversed(wire.messages) if m.role == "user"), wire.text)[:2000]
        return Choice(None, "tool_calls", tool_calls=[ft.tool_call(pick, query, call_id)])
    text = GENERIC.format(model=card)
    observations = [m.content for m in wire.messages if m.role == "tool"]
    if observations:
        text = f"The tool returned: {observations[-1][:500]}\n\n(serve-sim: simulated model {card}; no known problem.)"
    if wire.response_format["type"] != "text":
        schema = wire.response_format.get("schema") or {
            "type": "object",
            "properties": {"note": {"type": "string"}},
        }
        return Choice(json.dumps(ft.fill_schema(schema, query=text)), "stop")
    return Choice(ft.cut_at_stop(text, wire.stop)[0], "stop")


def _payload(chat: bool, choice: Choice) -> dict[str, Any]:
    """What a choice carries: a chat ``message`` (with reasoning and tool calls when present) or a ``text``."""
    if not chat:
        return {"text": choice.content or ""}
    message: dict[str, Any] = {"role": "assistant", "content": choice.content}
    if choice.reasoning is not None:
        message["reasoning_content"] = choice.reasoning
    if choice.tool_calls:
        message["tool_calls"] = choice.tool_calls
    return {"message": message}


def envelope(wire: WireRequest, choices: list[Choice], prompt_tokens: int, number: str) -> dict[str, Any]:
    """The reply body in the OpenAI shape."""
    out = [
        {"index": i, **_payload(wire.chat, choice), "finish_reason": choice.finish, "logprobs": choice.logprobs}
        for i, choice in enumerate(choices)
    ]
    completion_tokens = sum(c.tokens for c in choices)
    return {
        "id": f"{'chatcmpl' if wire.chat else 'cmpl'}-sim{number}",
        "object": "chat.completion" if wire.chat else "text_completion",
        "created": int(time.time()),
        "model": wire.model[:200],
        "system_fingerprint": "slmsim-sim",
        "choices": out,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def digest(*parts: object) -> int:
    return int.from_bytes(blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest(), "little")


def problem_label(problem: Problem | None) -> str:
    return f"{problem.benchmark}/{problem.id}" if problem is not None else "none"


def chat_message(m: Any) -> ChatMessage:
    """A wire turn as the simulator's ChatMessage: tool calls and results become ReAct-style text."""
    if m.role == "tool":
        return ChatMessage(role="user", content=f"Observation: {m.content}")
    if m.tool_calls:
        calls = "\n".join(f"Action: {c['name']}\nAction Input: {c['arguments']}" for c in m.tool_calls)
        return ChatMessage(role="assistant", content=f"{m.content}\n{calls}".strip())
    return ChatMessage(role=m.role, content=m.content)


def pieces(text: str, count: int = 8) -> list[str]:
    size = max(16, -(-len(text) // count))
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _chat_events(choice: dict[str, Any]) -> list[dict[str, Any]]:
    """One chat choice as deltas: the role, reasoning and content in pieces, each tool call's arguments, the finish."""
    i, message = choice["index"], choice["message"]
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
    for field in ("reasoning_content", "content"):
        deltas.extend({field: piece} for piece in (pieces(message[field]) if message.get(field) else []))
    for j, call in enumerate(message.get("tool_calls") or []):
        name = call["function"]["name"]
        deltas.append({"tool_calls": [{"index": j, "id": call["id"], "type": "function",
                                       "function": {"name": name, "arguments": ""}}]})  # fmt: skip
        deltas.extend({"tool_calls": [{"index": j, "function": {"arguments": piece}}]}
                      for piece in pieces(call["function"]["arguments"], 4))  # fmt: skip
    events = [{"index": i, "delta": d, "finish_reason": None} for d in deltas]
    return [*events, {"index": i, "delta": {}, "finish_reason": choice["finish_reason"]}]


def _text_events(choice: dict[str, Any]) -> list[dict[str, Any]]:
    """One completions choice as text pieces, the last carrying the finish."""
    parts = pieces(choice["text"])
    last = len(parts) - 1
    return [{"index": choice["index"], "text": piece, "finish_reason": choice["finish_reason"] if k == last else None,
             "logprobs": None} for k, piece in enumerate(parts)]  # fmt: skip


def stream(wire: WireRequest, body: dict[str, Any], headers: dict[str, str]) -> Response:
    """The reply as server-sent events: the text in several chunks per choice, its finish, [DONE]."""
    head = {k: body[k] for k in ("id", "created", "model", "system_fingerprint")}
    head["object"] = "chat.completion.chunk" if wire.chat else "text_completion"
    events = [e for choice in body["choices"] for e in (_chat_events if wire.chat else _text_events)(choice)]
    chunks = [{**head, "choices": [e]} for e in events]
    if wire.include_usage:
        chunks.append({**head, "choices": [], "usage": body["usage"]})
    sse = [b"data: " + orjson.dumps(chunk) + b"\n\n" for chunk in chunks]
    sse.append(b"data: [DONE]\n\n")
    return Response(200, headers={"Cache-Control": "no-cache", **headers}, content_type="text/event-stream", chunks=sse)
