"""alpha-UMi roles (planner / caller / summarizer) acting on the gold next turn of a ToolBench task.

A simple, documented model: the orchestrator passes the gold next turn in
``meta.extra["gold_next"]`` (teacher-forced static evaluation); the simulated model
reproduces it with the card's tool-use accuracies (defaults: the alpha-UMi paper's 7B
single-LLM agent, out-of-domain). Rules:

- planner: the gold decision (``Next: caller/conclusion/give up``) with probability
  ``plan_acc``, else another decision; the rationale is the gold one when right.
- caller: a hallucinated tool name with probability ``hallu``; the gold tool with
  probability ``act_em``; otherwise another listed tool. With the gold tool each gold
  argument keeps its value with probability v and only its key otherwise, where v is
  set so that the expected Arg F1 (key+value 1, key only 0.5) over all calls is ``arg_f1``.
- summarizer: keeps each word of the gold answer with probability r / (2 - r), which gives
  an expected ROUGE-L F1 near ``rouge_l`` (recall f, precision 1: F1 = 2f / (1 + f)).
"""

from __future__ import annotations

import json
import re
from typing import Any

from actors.backends.sim.cards import Card
from actors.backends.sim.skill import unit
from protocols.messages import RequestMeta

DECISIONS = ("caller", "conclusion", "give up")
_NEXT = re.compile(r"Next:\s*(caller|conclusion|give up)", re.IGNORECASE)
_ACTION = re.compile(r"Action:\s*(\S+)\s*\nAction Input:\s*(.*)", re.DOTALL)


def tool_reply(card: Card, meta: RequestMeta, key: tuple[object, ...]) -> Any:
    """The reply of one planner, caller or summarizer turn."""
    from actors.backends.sim.roles import Reply

    gold = meta.extra.get("gold_next")
    gold_text = gold if isinstance(gold, str) else ""
    match meta.role:
        case "planner":
            text = plan(card, gold_text, key)
        case "caller":
            text = call(card, gold_text, meta.tools, key)
        case _:
            text = summarize(card, gold_text, key)
    return Reply(text, None, None, 0.3)


def plan(card: Card, gold: str, key: tuple[object, ...]) -> str:
    """A planner rationale ending in ``Next: <decision>.``."""
    m = _NEXT.search(gold)
    gold_decision = m.group(1).lower() if m else "give up"
    if unit("plan", *key) < card.tool_use.plan_acc:
        rationale = gold[: m.start()].strip() if m else "I cannot make progress on this task."
        return f"{rationale or 'Proceeding with the plan.'}\nNext: {gold_decision}."
    others = [d for d in DECISIONS if d != gold_decision]
    # A wrong plan is mostly the caller/conclusion confusion; giving up is rarer.
    decision = others[0] if unit("plan-which", *key) < 0.75 else others[1]
    return f"Let me think about what to do next for this request.\nNext: {decision}."


def call(card: Card, gold: str, tools: tuple[str, ...], key: tuple[object, ...]) -> str:
    """A caller turn: ``Action: <tool>`` then ``Action Input: {json}``."""
    m = _ACTION.search(gold)
    gold_tool = m.group(1).strip() if m else (tools[0] if tools else "search")
    try:
        gold_args = json.loads(m.group(2)) if m else {}
    except json.JSONDecodeError:
        gold_args = {}
    if not isinstance(gold_args, dict):
        gold_args = {}
    tu = card.tool_use
    u = unit("call", *key)
    others = [t for t in tools if t != gold_tool]
    if u < tu.hallu:
        tool = f"{gold_tool.split('_for_')[0]}_api"  # a plausible name that is not in the list
        args: dict[str, Any] = {k: v for k, v in gold_args.items()}
    elif u < tu.hallu + tu.act_em or not others:
        tool = gold_tool
        value_right = min(1.0, max(0.0, 2.0 * tu.arg_f1 / max(tu.act_em, 1e-9) - 1.0))
        args = {}
        for k, v in gold_args.items():
            args[k] = v if unit("arg", *key, k) < value_right else _wrong_value(v)
    else:
        tool = others[int(unit("other-tool", *key) * len(others))]
        args = {"query": next((str(v) for v in gold_args.values()), "")}
    return f"Action: {tool}\nAction Input: {json.dumps(args)}"


def _wrong_value(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    return f"{value} info" if value else "default"


def summarize(card: Card, gold: str, key: tuple[object, ...]) -> str:
    """A final answer that keeps a share of the gold answer's words (ROUGE-L near ``rouge_l``)."""
    words = gold.split()
    if not words:
        return "I could not complete the task with the available tools."
    r = card.tool_use.rouge_l
    keep = r / (2.0 - r)
    kept = [w for i, w in enumerate(words) if unit("summary", *key, i) < keep]
    return " ".join(kept) if kept else words[0]
