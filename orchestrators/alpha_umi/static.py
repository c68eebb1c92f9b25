"""Static evaluation: one teacher-forced sample per gold planner step, predicted by the roles or a reference predictor.

``build_steps`` follows ``build_infer_samples`` of the original ``infer_pipeline.py``;
``predict_multi`` follows its planner -> caller / summarizer hand-off and writes the
prediction string in the same format (``"asssitant: "`` typo included, since the
evaluator never reads it), so the original evaluator could read our ``results.jsonl``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestrators.alpha_umi.metrics import Parsed, parse_backbone_output, parse_output
from orchestrators.alpha_umi.prompts import (
    CALLER_CUE,
    NEXT_TOKENS,
    PLANNER_CUE,
    SEP,
    SUMMARIZER_CUE,
    TOOLBENCH_BACKBONE,
    TOOLBENCH_CALLER,
    TOOLBENCH_PLANNER,
    TOOLBENCH_SUMMARIZER,
    clean_output,
    parse_planner,
    render,
    turn_text,
)
from orchestrators.alpha_umi.roles import RoleCaller
from protocols.alpha_umi import AgentSpec, Decision, Predictor


@dataclass(frozen=True, slots=True)
class StaticStep:
    """One gold planner step with its teacher-forced history (``dispatch``) and the original reference string."""

    id: str
    task_id: str
    index: int
    tools: tuple[dict[str, Any], ...]
    instruction: str
    dispatch: str
    backbone_history: str
    reference: str
    gold_decision: Decision
    gold_planner: str
    gold_next: str | None
    """The caller turn after a ``Next: caller.``, the conclusion after ``Next: conclusion.``."""

    @property
    def tool_names(self) -> tuple[str, ...]:
        return tuple(str(t["Name"]) for t in self.tools)

    def planner_prompt(self) -> str:
        return render(TOOLBENCH_PLANNER, list(self.tools), self.dispatch) + PLANNER_CUE

    def backbone_prompt(self) -> str:
        return render(TOOLBENCH_BACKBONE, list(self.tools), self.backbone_history) + PLANNER_CUE


def _decision(value: str) -> Decision | None:
    for decision in ("caller", "conclusion", "give up"):
        if NEXT_TOKENS[decision] in value:  # type: ignore[index]
            return decision  # type: ignore[return-value]
    return None


def build_steps(records: list[dict[str, Any]], source: str, first: int = 0) -> list[StaticStep]:
    """Every planner turn holding a decision token becomes a step, in file order (``first``: index of records[0])."""
    steps: list[StaticStep] = []
    for r_index, record in enumerate(records, start=first):
        task_id = f"toolbench/{source}/{r_index}"
        conv = record["conversations"]
        tools = tuple(record["tools"])
        dispatch = ""
        backbone = ""
        k = 0
        for j, turn in enumerate(conv):
            role, value = turn["from"], turn["value"]
            if role == "assistant":
                decision = _decision(value)
                if decision is not None:
                    # The original tests "Next: caller" without the dot here; same set on this data.
                    follows = decision in ("caller", "conclusion") and j + 1 < len(conv)
                    nxt = conv[j + 1] if follows else None
                    reference = (
                        f"assistant: {value}{SEP}{nxt['from']}: {nxt['value']}{SEP}" if nxt is not None else value
                    )
                    steps.append(
                        StaticStep(
                            id=f"{task_id}#{k}",
                            task_id=task_id,
                            index=len(steps),
                            tools=tools,
                            instruction=str(record["instruction"]),
                            dispatch=dispatch,
                            backbone_history=backbone,
                            reference=reference,
                            gold_decision=decision,
                            gold_planner=value,
                            gold_next=nxt["value"] if nxt is not None else None,
                        )
                    )
                    k += 1
                # The single-LLM history merges the call (or conclusion) into the planner turn.
                backbone += turn_text("assistant", _backbone_span(conv, j))
            elif role in ("user", "observation"):
                backbone += turn_text(role, value)
            dispatch += turn_text(role, value)
    return steps


def _backbone_span(conv: list[dict[str, Any]], j: int) -> str:
    """The single-LLM target of a planner turn (``prepro_backbone.py``): thought + call, or thought + conclusion."""
    value = conv[j]["value"]
    nxt = conv[j + 1] if j + 1 < len(conv) else None
    if "Next: give up." in value:
        return value.replace("Next: give up.", "").strip() + "\nconclusion: give up."
    if nxt is not None and nxt["from"] == "caller":
        return value.replace("Next: caller.", "").strip() + "\n" + nxt["value"]
    if nxt is not None and nxt["from"] == "conclusion":
        return value.replace("Next: conclusion.", "").strip() + "\nconclusion: " + nxt["value"]
    return str(value)


async def predict_multi(step: StaticStep, roles: RoleCaller, agent: AgentSpec) -> tuple[str, Parsed]:
    """Planner, then caller or summarizer, as ``infer_pipeline.py``; returns the prediction string and its parse."""
    raw = await roles.ask("planner", step.planner_prompt(), step, gold=step.gold_planner)
    planner_text, decision = parse_planner(clean_output(raw))
    if decision == "give up":
        return planner_text, parse_output(planner_text)
    if decision is None and agent.no_decision == "summarizer":
        planner_text, decision = planner_text + " " + NEXT_TOKENS["conclusion"], "conclusion"
    elif decision is None:
        planner_text = planner_text + NEXT_TOKENS["caller"]
        decision = "caller"
    history = step.dispatch + f"{agent.handoff_prefix}: {planner_text}{SEP}"
    gold = step.gold_next or ""
    if decision == "conclusion":
        prompt = render(TOOLBENCH_SUMMARIZER, list(step.tools), history, planner_text) + SUMMARIZER_CUE
        answer = clean_output(
            await roles.ask("summarizer", prompt, step, gold=gold if _is_gold(step, "conclusion") else "")
        )
        text = f"asssitant: {planner_text}{SEP}conclusion: {answer}"
    else:
        prompt = render(TOOLBENCH_CALLER, list(step.tools), history, planner_text) + CALLER_CUE
        call = clean_output(await roles.ask("caller", prompt, step, gold=gold if _is_gold(step, "caller") else ""))
        text = f"asssitant: {planner_text}{SEP}caller: {call}"
    return text, parse_output(text)


def _is_gold(step: StaticStep, decision: Decision) -> bool:
    return step.gold_decision == decision


async def predict_single(step: StaticStep, roles: RoleCaller) -> tuple[str, Parsed]:
    """The single-LLM baseline: one backbone call, read by the original ``evaluate-backbone.py`` parse."""
    gold = backbone_target(step)
    text = clean_output(await roles.ask("backbone", step.backbone_prompt(), step, gold=gold))
    return text, parse_backbone_output(text)


def backbone_target(step: StaticStep) -> str:
    """The single-LLM form of a step's gold turn: thought + call, thought + conclusion, or give up."""
    if step.gold_decision == "give up":
        return step.gold_planner.replace("Next: give up.", "").strip() + "\nconclusion: give up."
    if step.gold_decision == "caller":
        return step.gold_planner.replace("Next: caller.", "").strip() + "\n" + (step.gold_next or "")
    return step.gold_planner.replace("Next: conclusion.", "").strip() + "\nconclusion: " + (step.gold_next or "")


def baseline_prediction(step: StaticStep, predictor: Predictor) -> str:
    """Reference predictors (no model): the gold turn, always call the first tool with ``{}``, always conclude."""
    match predictor:
        case "gold":
            return step.reference
        case "first_tool_empty":
            first = step.tool_names[0] if step.tools else "none"
            return f"asssitant: I will call a tool. Next: caller.{SEP}caller: Action: {first}\nAction Input: {{}}"
        case "always_conclude":
            return f"asssitant: I can answer now. Next: conclusion.{SEP}conclusion: {step.instruction}"
    raise ValueError(f"predictor {predictor!r} needs models")


def load_records(data: Any, where: str) -> list[dict[str, Any]]:
    """Check the raw alpha-UMi records once; one clear line naming the bad record."""
    if not isinstance(data, list):
        raise ValueError(f"{where}: expected a JSON list of records, got {type(data).__name__}")
    for i, record in enumerate(data):
        if not isinstance(record, dict) or not isinstance(record.get("conversations"), list):
            raise ValueError(f"{where}: record {i} has no 'conversations' list")
        if not isinstance(record.get("tools"), list) or any(
            not isinstance(t, dict) or "Name" not in t for t in record["tools"]
        ):
            raise ValueError(f"{where}: record {i}: every tool needs a 'Name'")
        for c, turn in enumerate(record["conversations"]):
            if not isinstance(turn, dict) or not isinstance(turn.get("value"), str):
                raise ValueError(f"{where}: record {i} turn {c} has no string 'value'")
    return data
