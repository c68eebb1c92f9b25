"""The original alpha-UMi prompts, the shared transcript format, and the parsers of each role's reply.

The ToolBench (and ToolAlpaca) templates are copied verbatim (typos included: "assess", "Base on")
from X-PLUG/Multi-LLM-Agent, ``GLPFT/utils/prompt_lib.py`` (commit f9eeef7, 2024-02-25),
so the released checkpoints can be served unchanged. Templates are filled with
``str.replace`` exactly as the original does, never ``str.format`` (tool documents
hold braces).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from protocols.alpha_umi import Decision

TOOLBENCH_BACKBONE = """You have assess to the following apis:
{doc}
The conversation history is:
{history}
You should answer the action of next step in the following format:
The thought to solve the question,
Action: the name of api that should be called in this step, should be exactly in [{tool_names}],
Action Input: the api call request.
Once you think the question is finished, output conclusion: the final answer of the question or give up if you think you cannot answer this question.
"""  # noqa: E501

TOOLBENCH_PLANNER = """You have assess to the following apis:
{doc}
The conversation history is:
{history}
You are the assistant to plan what to do next and whether is caller's or conclusion's turn to answer.
Answer with a following format:
The thought of the next step, followed by Next: caller or conclusion or give up."""

TOOLBENCH_CALLER = """You have assess to the following apis:
{doc}
The conversation history is:
{history}
The thought of this step is:
{thought}
Base on the thought make an api call in the following format:
Action: the name of api that should be called in this step, should be exactly in [{tool_names}],
Action Input: the api call request."""

TOOLBENCH_SUMMARIZER = """Make a conclusion based on the conversation history:
{history}"""

TOOLALPACA_BACKBONE = """You have assess to the following apis:
{doc}
The conversation history is:
{history}
You should answer the action of next step in the following format:
The thought to solve the question,
Action: the name of api that should be called in this step, should be exactly in [{tool_names}],
Action Input: the api call request.
Once you think the question is finished, output conclusion: the final answer of the question.
"""

TOOLALPACA_PLANNER = """You have assess to the following apis:
{doc}
The conversation history is:
{history}
You are the assistant to plan what to do next and whether is caller's or conclusion's turn to answer.
Answer with a following format:
The thought of the next step, followed by Next: caller or conclusion."""

TOOLALPACA_CALLER = TOOLBENCH_CALLER
TOOLALPACA_SUMMARIZER = TOOLBENCH_SUMMARIZER
"""The ToolAlpaca caller and summarizer templates are character for character the ToolBench ones."""


class PromptSet(NamedTuple):
    """The four templates of one benchmark (``prompt_lib.py``'s ``<benchmark>_<role>`` entries)."""

    backbone: str
    planner: str
    caller: str
    summarizer: str


PROMPTS = {
    "toolbench": PromptSet(TOOLBENCH_BACKBONE, TOOLBENCH_PLANNER, TOOLBENCH_CALLER, TOOLBENCH_SUMMARIZER),
    "toolalpaca": PromptSet(TOOLALPACA_BACKBONE, TOOLALPACA_PLANNER, TOOLALPACA_CALLER, TOOLALPACA_SUMMARIZER),
}

DIVERSITY_PROMPT = """This is not the first time you try this task, all previous trails failed.
Before you generate my thought for this state, I will first show you your previous actions for this state, and then you must generate actions that is different from all of them. Here are some previous actions candidates:
{previous_candidate}
Remember you are now in the intermediate state of a trail, you will first analyze the now state and previous action candidates, then make actions that is different from all the previous."""  # noqa: E501
"""DFSDT's retry prompt, verbatim from ToolBench-multiLLM/toolbench/inference/Prompts/Tree_search_prompts.py."""

SEP = "</s>"
"""The turn separator of the shared transcript (the LLaMA end-of-sequence token)."""
NEXT_TOKENS: dict[Decision, str] = {
    "caller": "Next: caller.",
    "conclusion": "Next: conclusion.",
    "give up": "Next: give up.",
}
# What each role's prompt ends with; the model continues from there.
PLANNER_CUE = " assistant: "
CALLER_CUE = " caller: "
SUMMARIZER_CUE = " conclusion: "


def tool_doc(tools: Iterable[Mapping[str, Any]]) -> str:
    """``{doc}``: one ``json.dumps`` of each raw tool record per line, as the original."""
    return "".join(json.dumps(dict(t)) + "\n" for t in tools)


def tool_names(tools: Iterable[Mapping[str, Any]]) -> str:
    """``{tool_names}``: the tools' ``Name`` joined by ``", "``."""
    return ", ".join(str(t["Name"]) for t in tools)


def render(template: str, tools: Sequence[Mapping[str, Any]], history: str, thought: str = "") -> str:
    """A filled template; the replacement order is the original's ({doc}, {tool_names}, {thought}, {history})."""
    text = template.replace("{doc}", tool_doc(tools)).replace("{tool_names}", tool_names(tools))
    return text.replace("{thought}", thought).replace("{history}", history)


def turn_text(role: str, value: str) -> str:
    """One turn of the shared transcript; an observation has no separator after it (as in the original)."""
    if role == "observation":
        return f"observation: {value}"
    return f"{role}: {value}{SEP}"


def clean_output(text: str) -> str:
    """The original's post-processing of every generation: drop a leading ``": "``; blank becomes ``none``."""
    if text.startswith(": "):
        text = text[2:]
    if text.strip() in ("", ".", ","):
        return "none"
    return text


class PlannerReply(NamedTuple):
    """A planner output cut after its decision token, and the decision (``None``: no token found)."""

    text: str
    decision: Decision | None


def parse_planner(text: str) -> PlannerReply:
    """The original's dispatch order: give up, then conclusion, then caller; cut after the first such token."""
    for decision in ("give up", "conclusion", "caller"):
        token = NEXT_TOKENS[decision]  # type: ignore[index]
        if token in text:
            return PlannerReply(text[: text.index(token) + len(token)], decision)  # type: ignore[arg-type]
    return PlannerReply(text, None)


class CallerReply(NamedTuple):
    """The tool name and the raw argument text of a caller output (the evaluator's parse)."""

    action: str
    action_input: str


def parse_caller(text: str) -> CallerReply:
    """``Action:`` and ``Action Input:`` read as the original evaluator does (last occurrences win).

    No ``Action:`` gives the action ``none``; no ``Action Input:`` gives ``{}``.
    """
    action_input = "{}"
    if "Action Input:" in text:
        action_input = text[text.rindex("Action Input:") + len("Action Input:") :].strip()
    action = "none"
    if "Action:" in text:
        action = text[text.rindex("Action:") + len("Action:") :].strip()
        if "Action Input:" in action:
            action = action[: action.index("Action Input:")].strip()
    return CallerReply(action, action_input)


class BackboneReply(NamedTuple):
    """A single-LLM (backbone) output: decision, then the call or the answer it carries."""

    decision: Decision
    thought: str
    action: str | None
    action_input: str | None
    answer: str | None


def parse_backbone(text: str) -> BackboneReply:
    """The original ``evaluate-backbone.py`` parse: ``conclusion: give up`` / ``conclusion: X`` / a call."""
    if "conclusion: give up" in text:
        return BackboneReply("give up", text[: text.index("conclusion: give up")].strip(), None, None, None)
    if "conclusion: " in text:
        at = text.rindex("conclusion: ")
        return BackboneReply("conclusion", text[:at].strip(), None, None, text[at + len("conclusion: ") :])
    call = parse_caller(text)
    thought = text[: text.index("Action:")].strip() if "Action:" in text else text.strip()
    return BackboneReply("caller", thought, call.action, call.action_input, None)
