"""alpha-UMi roles (planner / caller / summarizer, or one single-LLM backbone) on ToolBench-style tasks.

The orchestrator passes the gold next turn in ``meta.extra["gold_next"]`` (the recorded
trajectory's turn at this point; real backends ignore it); the simulated model reproduces
it with the card's tool-use skill and errs the way small tool-use models do.

Calibration. A card's ``tool_use`` holds the five *metric-level* figures of a single model
in the original static evaluation (default: the alpha-UMi paper's 7B single-LLM agent,
out-of-domain; ``public_results.yaml``). The metrics compound decisions (Act. EM needs the
right plan *and* the right tool; Hallu. is over all steps; R-L is over gold conclusions,
where a wrong plan scores ``none``), so each is turned into a per-decision probability
using the step mix of the ToolBench out-of-domain file (constants below, checked against
the file by a test):

- planner: the gold decision with probability ``plan_acc``; otherwise mostly the
  caller/conclusion confusion (``WRONG_TO_CALLER`` of wrong plans go to the caller).
  With the gold decision the rationale is the gold one.
- caller, asked on a gold call: the gold tool with probability ``act_em / plan_acc``; a
  hallucinated name with probability ``hallu / P(caller is asked)``; else another listed
  tool. Hallucinated names are the mangles seen in ToolBench outputs: the API name without
  its ``_for_<tool>`` suffix, the tool's own name, or a camel-cased variant.
- arguments, with the gold tool: every gold key is kept; each value stays right with
  probability v, set so that the expected Arg. F1 (key+value 1, key only 0.5; a gold ``{}``
  answered ``{}`` is 1) over gold calls equals ``arg_f1``. A wrong value is a near miss of
  the right one (another number, a shortened or extended string, a flipped flag).
- summarizer, asked on a gold conclusion: keeps each word of the gold answer with
  probability f, so ROUGE-L F (precision ~1, recall f: 2f / (1 + f)) is ``rouge_l / plan_acc``.
- backbone (``extra["format"] == "backbone"``, the single-LLM agent): the same three
  rules in one output, in the single-LLM format (thought, then ``Action:``/``Action Input:``
  or ``conclusion: ...`` / ``conclusion: give up.``).

Nothing here distinguishes a model fine-tuned for one role from one doing all roles: with
the same card, alpha-UMi and the single-LLM agent get the same per-decision skill, so the
simulator predicts no accuracy gain from the decomposition by itself (only its extra calls
and tokens). That is a prediction to be judged against the paper, not a fitted result.
"""

from __future__ import annotations

import json
import re
from typing import Any, NamedTuple

from actors.backends.sim.cards import Card, ToolUse
from actors.backends.sim.skill import unit
from actors.backends.sim.text import Reply
from protocols.messages import RequestMeta

DECISIONS = ("caller", "conclusion", "give up")
CALL_SHARE = 1146 / 1547
"""Share of gold planner steps that are calls (ToolBench out-of-domain)."""
EMPTY_ARGS_SHARE = 471 / 1146
"""Share of gold calls whose arguments are ``{}``."""
WRONG_TO_CALLER = 0.75
"""Of wrong plans on a non-call step, the share that sends the task to the caller."""
_NEXT = re.compile(r"Next:\s*(caller|conclusion|give up)", re.IGNORECASE)
_ACTION = re.compile(r"Action:\s*(\S+)\s*\nAction Input:\s*(.*)", re.DOTALL)


class Skill(NamedTuple):
    """Per-decision probabilities derived from a card's metric-level figures."""

    plan: float
    tool: float
    hallu: float
    value: float
    keep_word: float


def skill_of(tu: ToolUse) -> Skill:
    """The per-decision probabilities (see the module docstring for the algebra)."""
    plan = max(tu.plan_acc, 1e-6)
    tool = min(1.0, tu.act_em / plan)
    asked = CALL_SHARE * plan + (1 - CALL_SHARE) * (1 - plan) * WRONG_TO_CALLER
    hallu = min(1.0 - tool, tu.hallu / max(asked, 1e-6))
    per_call = tu.arg_f1 / max(tu.act_em, 1e-6)  # expected F1 of a call with the right tool
    value = 2.0 * (per_call - EMPTY_ARGS_SHARE) / (1.0 - EMPTY_ARGS_SHARE) - 1.0
    r = min(1.0, tu.rouge_l / plan)
    return Skill(plan, tool, hallu, min(1.0, max(0.0, value)), r / (2.0 - r))


def tool_reply(card: Card, meta: RequestMeta, key: tuple[object, ...]) -> Reply:
    """The reply of one planner, caller, summarizer or backbone turn."""
    gold = meta.extra.get("gold_next")
    gold_text = gold if isinstance(gold, str) else ""
    skill = skill_of(card.tool_use)
    if meta.extra.get("format") == "backbone":
        text = backbone(skill, gold_text, meta.tools, key)
    else:
        match meta.role:
            case "planner":
                text = plan(skill, gold_text, key)
            case "caller":
                text = call(skill, gold_text, meta.tools, key)
            case _:
                text = summarize(skill, gold_text, key)
    # Token counts follow the text actually written (~4 characters a token), not a benchmark's
    # typical solution length: a tool-use turn is as long as its rationale, call or answer.
    factor = max(0.02, len(text) / 4.0 / card.tokens_on("unknown").mean)
    return Reply(text, None, None, factor)


def decide(skill: Skill, gold_decision: str, key: tuple[object, ...]) -> str:
    """The decision: the gold one with probability ``skill.plan``, else mostly caller <-> conclusion."""
    if unit("plan", *key) < skill.plan:
        return gold_decision
    others = [d for d in DECISIONS if d != gold_decision]
    return others[0] if unit("plan-which", *key) < WRONG_TO_CALLER else others[1]


def plan(skill: Skill, gold: str, key: tuple[object, ...]) -> str:
    """A planner rationale ending in ``Next: <decision>.``."""
    m = _NEXT.search(gold)
    gold_decision = m.group(1).lower() if m else "give up"
    decision = decide(skill, gold_decision, key)
    if decision == gold_decision:
        rationale = gold[: m.start()].strip() if m else "I cannot make progress on this task."
        return f"{rationale or 'Proceeding with the plan.'}\nNext: {decision}."
    return f"Let me think about what to do next for this request.\nNext: {decision}."


def _gold_call(gold: str, tools: tuple[str, ...]) -> tuple[str, dict[str, Any]]:
    m = _ACTION.search(gold)
    tool = m.group(1).strip() if m else (tools[0] if tools else "search")
    try:
        args = json.loads(m.group(2)) if m else {}
    except json.JSONDecodeError:
        args = {}
    return tool, args if isinstance(args, dict) else {}


def hallucinated_name(tool: str, tools: tuple[str, ...], u: float) -> str:
    """A plausible name that is not in the list (the mangles small models make of ToolBench names)."""
    api, _, family = tool.partition("_for_")
    candidates = [api, family or f"{api}_api", "".join(p.capitalize() for p in api.split("_")), f"{api}_v2"]
    candidates = [c for c in candidates if c and c not in tools]
    return candidates[int(u * len(candidates))] if candidates else f"{tool}_api"


def call(skill: Skill, gold: str, tools: tuple[str, ...], key: tuple[object, ...]) -> str:
    """A caller turn: ``Action: <tool>`` then ``Action Input: {json}``."""
    tool, args = choose_call(skill, gold, tools, key)
    return f"Action: {tool}\nAction Input: {json.dumps(args)}"


def choose_call(skill: Skill, gold: str, tools: tuple[str, ...], key: tuple[object, ...]) -> tuple[str, dict[str, Any]]:
    gold_tool, gold_args = _gold_call(gold, tools)
    u = unit("call", *key)
    others = [t for t in tools if t != gold_tool]
    if u < skill.tool or (not others and u >= skill.tool + skill.hallu):
        out: dict[str, Any] = {}
        for k, v in gold_args.items():
            out[k] = v if unit("arg", *key, k) < skill.value else _wrong_value(v, unit("arg-how", *key, k))
        return gold_tool, out
    if u < skill.tool + skill.hallu:
        return hallucinated_name(gold_tool, tools, unit("hallu-name", *key)), dict(gold_args)
    other = others[int(unit("other-tool", *key) * len(others))]
    return other, {k: v for k, v in gold_args.items() if unit("arg-keep", *key, k) < 0.5}


def _wrong_value(value: Any, u: float) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + (1 if u < 0.5 else 10)
    text = str(value)
    if not text:
        return "default"
    words = text.split()
    if u < 0.4 and len(words) > 1:
        return " ".join(words[:-1])
    if u < 0.7:
        return text.lower() if text.lower() != text else f"{text} info"
    return f"{text} info"


def summarize(skill: Skill, gold: str, key: tuple[object, ...]) -> str:
    """A final answer that keeps a share of the gold answer's words."""
    words = gold.split()
    if not words:
        return "I could not complete the task with the available tools."
    kept = [w for i, w in enumerate(words) if unit("summary", *key, i) < skill.keep_word]
    return " ".join(kept) if kept else words[0]


def _backbone_gold(gold: str) -> tuple[str, str, str]:
    """(decision, thought, rest) of a single-LLM target: thought + call, or + ``conclusion: ...``."""
    if "conclusion: give up" in gold:
        return "give up", gold[: gold.index("conclusion: give up")].strip(), ""
    if "conclusion: " in gold:
        at = gold.rindex("conclusion: ")
        return "conclusion", gold[:at].strip(), gold[at + len("conclusion: ") :]
    if "Action:" in gold:
        at = gold.index("Action:")
        return "caller", gold[:at].strip(), gold[at:]
    return "give up", gold.strip(), ""


def backbone(skill: Skill, gold: str, tools: tuple[str, ...], key: tuple[object, ...]) -> str:
    """The single-LLM agent: decision, then the call or the conclusion, in one output."""
    gold_decision, thought, rest = _backbone_gold(gold)
    decision = decide(skill, gold_decision, key)
    thought = thought if decision == gold_decision and thought else "Let me think about what to do next."
    if decision == "give up":
        return f"{thought}\nconclusion: give up."
    if decision == "conclusion":
        answer = summarize(skill, rest if gold_decision == "conclusion" else "", key)
        return f"{thought}\nconclusion: {answer}"
    tool, args = choose_call(skill, rest, tools, key)
    return f"{thought}\nAction: {tool}\nAction Input: {json.dumps(args)}"
