r"""Shaping a simulated completion into what an OpenAI server returns for the request's features.

- **Length**: the simulator's text is a line or two; its ``usage`` is drawn from the card's
  length statistics. ``pad`` inserts step-by-step filler before the final line so the text
  has about 4 characters per reported completion token. The filler has no digits and no
  stand-alone capitals, so a grader still extracts exactly the final line.
- **Reasoning models** (R1-style cards): the filler and reasoning lines go to
  ``reasoning_content`` (as DeepSeek's API and vLLM's reasoning parser return them), the
  final line to ``content``; ``--think-tags`` puts them inline in ``<think>...</think>``.
- **Answer format**: the final line follows what the prompt asks for (``\boxed{}`` or
  ``#### n``), whatever the benchmark's own format.
- **stop** cuts the text at the first stop string (finish_reason ``stop``).
- **tools**: a ReAct ``Action: X / Action Input: {...}`` reply becomes a ``tool_calls`` entry
  whose arguments follow the tool's JSON schema (its query-like string field carries the
  question); ``Final Answer:`` becomes plain content.
- **response_format** json_object / json_schema: a JSON object following the schema, with
  the answer in its natural field (``answer``, ``final_answer``, ``result``, ...) and the
  reasoning in ``reasoning``/``explanation``-like fields.
- **logprobs**: per-token entries; the answer's first token carries log(confidence), the
  model's consistency (the share of extra hidden samples that give the same answer).
"""

from __future__ import annotations

import functools
import json
import math
import re
from hashlib import blake2b
from typing import Any

FILLER = (
    "we restate the quantities given in the problem and what is asked for.",
    "next we write down the relation between them and simplify it step by step.",
    "checking the intermediate result against the conditions, it is consistent.",
    "we substitute back and carry out the arithmetic carefully.",
    "there is another way to see this, which leads to the same expression.",
    "rearranging the terms gives a cleaner form of the equation.",
    "this matches the constraint stated at the beginning, so we continue.",
    "we double-check the sign and the units of each quantity.",
    "combining the partial results, the remaining step is direct.",
    "so the computation is complete and the value follows.",
)
ANSWER_FIELDS = ("answer", "final_answer", "result", "solution", "value", "output", "number", "response")
REASONING_FIELDS = ("reasoning", "explanation", "rationale", "thought", "thoughts", "steps", "justification")
QUERY_FIELDS = ("query", "question", "input", "q", "text", "problem", "expression", "prompt", "search")
_ACTION = re.compile(r"^\s*Action\s*:\s*(.+?)\s*$", re.MULTILINE)
_ACTION_INPUT = re.compile(r"^\s*Action Input\s*:\s*(.*)$", re.MULTILINE | re.DOTALL)
_FINAL = re.compile(r"Final Answer\s*:\s*(.*)", re.DOTALL)
_HASHES = re.compile(r"^####\s*(.+)$", re.MULTILINE)
_BOXED_LINE = re.compile(r"^.*\\boxed\{(.*)\}.*$", re.MULTILINE)


def _u(*parts: object) -> int:
    return int.from_bytes(blake2b("\x1f".join(map(str, parts)).encode(), digest_size=4).digest(), "little")


_CYCLE = " ".join(FILLER[(i * 7) % len(FILLER)] for i in range(len(FILLER) * 8))
_STARTS = [0] + [i + 1 for i, ch in enumerate(_CYCLE) if ch == " " and _CYCLE[i - 1] == "."]
_LONG = " ".join([_CYCLE] * 8)
"""``_CYCLE`` repeated, as ``filler`` would build it by appending, so most fillers are one slice."""


def filler(chars: int, *key: object) -> str:
    """About ``chars`` characters of plausible reasoning, ending on a full sentence (deterministic per ``key``)."""
    if chars <= 0:
        return ""
    start = _STARTS[_u(*key) % len(_STARTS)]
    if start + chars <= len(_LONG):  # the common case: one slice of the cycle repeated once for all
        cut = _LONG[start : start + chars]
    else:
        text = _CYCLE[start:]
        while len(text) < chars:
            text += " " + _CYCLE
        cut = text[:chars]
    end = cut.rfind(".")
    return cut[: end + 1] if end > 0 else cut.rsplit(" ", 1)[0]


@functools.cache  # a handful of card names, asked once a reply
def is_reasoning_card(name: str) -> bool:
    """R1-style reasoning models (they return their thinking apart from the answer)."""
    return "-r1" in name.lower() or name.lower().startswith("r1") or "reason" in name.lower()


def wanted_format(prompt: str) -> str | None:
    r"""The answer format the prompt asks for (``boxed`` / ``gsm8k``), or None if it does not say."""
    boxed, hashes = prompt.rfind("\\boxed"), prompt.rfind("####")
    if boxed < 0 and hashes < 0:
        return None
    return "boxed" if boxed > hashes else "gsm8k"


def reformat(text: str, wanted: str | None) -> str:
    r"""Rewrite the final answer line into the format the prompt asked for."""
    if wanted == "boxed" and "\\boxed" not in text:
        return _HASHES.sub(lambda m: f"The final answer is $\\boxed{{{m.group(1).strip()}}}$.", text)
    if wanted == "gsm8k" and "####" not in text:
        return _BOXED_LINE.sub(lambda m: f"#### {m.group(1).strip()}", text)
    return text


def pad(text: str, completion_tokens: int, key: object) -> tuple[str, str]:
    """(reasoning filler, text): the filler makes the pair about 4 chars per completion token."""
    missing = 4 * completion_tokens - len(text)
    return filler(missing - 1, "pad", key), text


def join_padding(reasoning: str, text: str) -> str:
    """Filler placed before the final line (after the opening line of a multi-line reply)."""
    if not reasoning:
        return text
    head, sep, tail = text.rpartition("\n")
    if not sep:
        return f"{reasoning}\n{text}"
    return f"{head}\n{reasoning}\n{tail}"


def cut_at_stop(text: str, stop: tuple[str, ...]) -> tuple[str, bool]:
    """``text`` up to the first stop string, and whether one was found."""
    cuts = [i for i in (text.find(s) for s in stop) if i >= 0]
    return (text[: min(cuts)], True) if cuts else (text, False)


def tokens_of(text: str) -> int:
    """Tokens of a text at the usual 4 characters a token."""
    return tokens_in(len(text))


def tokens_in(chars: int) -> int:
    """Tokens of a text of ``chars`` characters (``tokens_of``)."""
    return max(1, math.ceil(chars / 4))


# --- JSON schemas ---------------------------------------------------------------------


def _resolve(schema: dict[str, Any], root: dict[str, Any], depth: int = 0) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/") and depth < 16:
        node: Any = root
        for part in ref[2:].split("/"):
            node = node.get(part, {}) if isinstance(node, dict) else {}
        return _resolve(node if isinstance(node, dict) else {}, root, depth + 1)
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list):
            for option in options:
                if isinstance(option, dict) and option.get("type") != "null":
                    return _resolve(option, root, depth + 1)
    return schema


def _as_number(answer: str | None, integer: bool) -> int | float:
    if answer is None:
        return 0
    try:
        value = float(answer.replace(",", "").strip("$ "))
    except ValueError:
        return 0
    return int(value) if integer or value.is_integer() else value


def fill_schema(
    schema: dict[str, Any],
    *,
    query: str | None = None,
    answer: str | None = None,
    reasoning: str = "",
    root: dict[str, Any] | None = None,
    depth: int = 0,
) -> Any:
    """A value following ``schema``: the answer/reasoning/query in their natural fields, defaults elsewhere."""
    root = root or schema
    schema = _resolve(schema, root)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        if depth > 8 or not isinstance(props, dict):
            return {}
        out: dict[str, Any] = {}
        first_string = next(
            (n for n, s in props.items() if isinstance(s, dict) and _resolve(s, root).get("type") == "string"), None
        )
        for name, sub in props.items():
            sub = _resolve(sub if isinstance(sub, dict) else {}, root)
            lowered = name.lower()
            sub_kind = sub.get("type")
            if lowered in REASONING_FIELDS and sub_kind in (None, "string"):
                out[name] = reasoning
            elif (lowered in ANSWER_FIELDS or (query is None and name == first_string)) and answer is not None:
                out[name] = _as_number(answer, sub_kind == "integer") if sub_kind in ("number", "integer") else answer
            elif (
                query is not None and (lowered in QUERY_FIELDS or name == first_string) and sub_kind in (None, "string")
            ):
                out[name] = query
            else:
                out[name] = fill_schema(sub, query=None, answer=None, root=root, depth=depth + 1)
        return out
    match kind:
        case "array":
            items = schema.get("items")
            count = int(schema.get("minItems", 0) or 0)
            return [fill_schema(items if isinstance(items, dict) else {}, root=root, depth=depth + 1)] * count
        case "integer" | "number":
            return _as_number(answer, kind == "integer") if answer is not None else schema.get("minimum", 0)
        case "boolean":
            return False
        case "null":
            return None
    return answer if answer is not None else (query or "")


# --- tool calls -------------------------------------------------------------------------


def parse_react(text: str) -> tuple[str | None, str | None]:
    """(tool name, None) for an ``Action:`` reply, (None, final text) for a ``Final Answer:``, else (None, None)."""
    action = _ACTION.search(text)
    if action and _ACTION_INPUT.search(text):
        return action.group(1).strip(), None
    final = _FINAL.search(text)
    if final:
        return None, final.group(1).strip()
    return None, None


def is_answer_schema(tool: dict[str, Any]) -> bool:
    """Whether a tool's parameters hold an answer-like field: a structured-output "tool", not an action."""
    props = (tool["function"].get("parameters") or {}).get("properties")
    return isinstance(props, dict) and any(str(name).lower() in ANSWER_FIELDS for name in props)


def tool_call(
    tool: dict[str, Any], query: str | None, call_id: str, answer: str | None = None, reasoning: str = ""
) -> dict[str, Any]:
    """A well-formed ``tool_calls`` entry for ``tool``: its arguments carry ``query`` (or the answer)."""
    fn = tool["function"]
    arguments = fill_schema(fn.get("parameters") or {"type": "object"}, query=query, answer=answer, reasoning=reasoning)
    if not isinstance(arguments, dict):
        arguments = {"query": query}
    return {"id": call_id, "type": "function", "function": {"name": fn["name"], "arguments": json.dumps(arguments)}}


# --- logprobs ----------------------------------------------------------------------------


def _pieces(text: str) -> list[str]:
    return re.findall(r"\s*\S{1,4}|\s+", text) or [text]


def chat_logprobs(text: str, answer: str | None, shares: dict[str, float], top: int) -> dict[str, Any]:
    """A chat ``logprobs`` object: near-certain filler tokens; the answer's first token at log(confidence)."""
    pieces = _pieces(text)
    at = text.rfind(answer) if answer else -1
    entries: list[dict[str, Any]] = []
    offset = 0
    for piece in pieces:
        logprob = -0.02
        alternatives = [(piece, logprob)]
        if at >= 0 and offset <= at < offset + len(piece) and answer is not None:
            logprob = math.log(max(shares.get(answer, 0.0), 1e-4))
            alternatives = sorted(((a, math.log(max(s, 1e-4))) for a, s in shares.items()), key=lambda x: -x[1])
            if answer not in shares:
                alternatives.insert(0, (piece, logprob))
            at = -1
        entries.append(
            {
                "token": piece,
                "logprob": logprob,
                "bytes": list(piece.encode("utf-8")),
                "top_logprobs": [
                    {"token": t, "logprob": lp, "bytes": list(t.encode("utf-8"))} for t, lp in alternatives[:top]
                ],
            }
        )
        offset += len(piece)
    return {"content": entries, "refusal": None}


def completion_logprobs(text: str, answer: str | None, shares: dict[str, float], top: int) -> dict[str, Any]:
    """The completions endpoint's ``logprobs`` object (tokens, token_logprobs, top_logprobs, text_offset)."""
    chat = chat_logprobs(text, answer, shares, max(top, 1))["content"]
    offsets, offset = [], 0
    for entry in chat:
        offsets.append(offset)
        offset += len(entry["token"])
    return {
        "tokens": [e["token"] for e in chat],
        "token_logprobs": [e["logprob"] for e in chat],
        "top_logprobs": [{t["token"]: t["logprob"] for t in e["top_logprobs"][:top]} for e in chat] if top else None,
        "text_offset": offsets,
    }
