"""The ReAct loop of a stacking agent, its prompt templates and the parser of its replies.

An agent is asked a query about a problem; it alternates Thought / Action / Action
Input (JSON ``{"query": ...}``) / Observation for at most ``max_steps`` model calls
and ends with a Final Answer. The rule "call every tool at least once" is enforced
here: a Final Answer before all tools were called is refused with an observation
naming the tools left. Malformed actions, unknown tools and tool failures become
observations; running out of steps is a ``steps_exhausted`` failure, never an answer.

These functions are passed by reference into agent actors (``actors.agent``), which
may not import orchestrators; they need no Ray and run on in-process fakes in tests.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import NamedTuple

from orchestrators.prompts import FORMAT_HINTS
from protocols.config import StackingConfig
from protocols.interfaces import Grader, Model
from protocols.messages import (
    AnswerFormat,
    CallRecord,
    ChatMessage,
    CompletionRequest,
    Failure,
    NoteRecord,
    Problem,
    RequestMeta,
    ToolCallRecord,
    TraceEvent,
)
from protocols.tools import Tool, ToolAnswer

# --- prompts -----------------------------------------------------------------

REACT_SYSTEM = """Answer the following question as best you can. You have access to the following tools:

{tool_lines}

Each tool is a solver: send it the question (or a sub-question) and it replies with its reasoning and answer.
You MUST call every tool at least once before you give your Final Answer.

Use the following format:

Question: the input question you must answer
Thought: you should always think about what to do
Action: the action to take, exactly one of [{tool_names}]
Action Input: {{"query": "<the question or a sub-question for the tool>"}}
Observation: the result of the action
... (this Thought/Action/Action Input/Observation can repeat, at most {max_steps} steps in all)
Thought: I now know the final answer
Final Answer: the final answer to the original question. {format_hint}

Begin!"""

REACT_QUESTION = "Question: {query}"
OBSERVATION = "Observation: {text}"
STOP = ("\nObservation:",)

REFUSE_EARLY_FINAL = (
    "You must call every tool at least once before giving a Final Answer. "
    "Tools not called yet: {remaining}. Call them now."
)
INVALID_FORMAT = (
    "Invalid format: {reason}. Reply with 'Action: <tool>' and "
    "a JSON 'Action Input: {{\"query\": \"...\"}}', or with 'Final Answer: ...'."
)
UNKNOWN_TOOL = "{name!r} is not a valid tool, try one of [{tool_names}]."
TOOL_FAILED = "The tool {name!r} failed: {error}: {message}"

TOOL_SYSTEM = "You are a careful problem solver. Reason step by step. {format_hint}"


def react_messages(
    query: str, tools: tuple[str, ...], answer_format: AnswerFormat, max_steps: int
) -> list[ChatMessage]:
    """The opening turns of an agent: the instructions with its tools, then the question."""
    system = REACT_SYSTEM.format(
        tool_lines="\n".join(f"{name}: a solver model or agent; input a query" for name in tools),
        tool_names=", ".join(tools),
        max_steps=max_steps,
        format_hint=FORMAT_HINTS[answer_format],
    )
    return [
        ChatMessage(role="system", content=system),
        ChatMessage(role="user", content=REACT_QUESTION.format(query=query)),
    ]


def tool_messages(query: str, answer_format: AnswerFormat) -> tuple[ChatMessage, ...]:
    """The turns a raw model (``X_0``) sees when asked a query as a tool."""
    return (
        ChatMessage(role="system", content=TOOL_SYSTEM.format(format_hint=FORMAT_HINTS[answer_format])),
        ChatMessage(role="user", content=query),
    )


# --- the parser of a ReAct reply ----------------------------------------------


class ReactAction(NamedTuple):
    """The reply asks to call ``tool`` with ``query``."""

    tool: str
    query: str


class ReactFinal(NamedTuple):
    """The reply gives a final answer (the text after ``Final Answer:``)."""

    text: str


class ReactMalformed(NamedTuple):
    """The reply could not be read as an action or a final answer; ``reason`` says why."""

    reason: str


ReactStep = ReactAction | ReactFinal | ReactMalformed

_ACTION = re.compile(r"^\s*Action\s*:[ \t]*(?P<tool>.*?)[ \t]*$", re.MULTILINE)
_INPUT = re.compile(r"^\s*Action\s*Input\s*:[ \t]*(?P<input>.*)", re.MULTILINE | re.DOTALL)
_FINAL = re.compile(r"^\s*Final\s*Answer\s*:[ \t]*(?P<text>.*)", re.MULTILINE | re.DOTALL)


def _strip_name(raw: str) -> str:
    return raw.strip().strip("`'\"*[]").strip()


def _parse_input(raw: str) -> str | ReactMalformed:
    raw = raw.strip().strip("`").removeprefix("json").strip()
    start = raw.find("{")
    if start < 0:
        return ReactMalformed(f"Action Input is not a JSON object: {raw[:80]!r}")
    try:
        # raw_decode reads one object and ignores what follows (e.g. a stray Final Answer).
        data, _ = json.JSONDecoder().raw_decode(raw, start)
    except json.JSONDecodeError as exc:
        return ReactMalformed(f"Action Input is not valid JSON ({exc.msg}): {raw[:80]!r}")
    query = data.get("query") if isinstance(data, dict) else None
    if not isinstance(query, str) or not query.strip():
        return ReactMalformed(f'Action Input needs a non-empty string "query": {raw[:80]!r}')
    return query


def parse_react(text: str) -> ReactStep:
    """Read one agent reply: the first of an action or a final answer, whichever comes first.

    Anything after a hallucinated ``Observation:`` is ignored (the model must not
    write its own observations).
    """
    text = text.split("\nObservation:")[0]
    action = _ACTION.search(text)
    final = _FINAL.search(text)
    if action and (final is None or action.start() < final.start()):
        tool = _strip_name(action.group("tool"))
        if not tool:
            return ReactMalformed("'Action:' names no tool")
        given = _INPUT.search(text, action.end())
        if given is None:
            return ReactMalformed(f"'Action: {tool}' has no 'Action Input:'")
        query = _parse_input(given.group("input"))
        if isinstance(query, ReactMalformed):
            return query
        return ReactAction(tool=tool, query=query)
    if final is not None:
        answer = final.group("text").strip()
        if not answer:
            return ReactMalformed("'Final Answer:' is empty")
        return ReactFinal(text=answer)
    return ReactMalformed("found neither 'Action:' nor 'Final Answer:'")


# --- the loop -------------------------------------------------------------------


def agent_note(name: str, model: str, layer: int, tools: tuple[str, ...]) -> NoteRecord:
    """The first event of an agent's trace: who it is, so per-layer totals can be read back."""
    return NoteRecord(label="agent", data={"name": name, "model": model, "layer": layer, "tools": list(tools)})


async def _call_tool(tool: Tool, name: str, problem: Problem, query: str, run_id: str) -> ToolAnswer:
    try:
        return await tool.ask(problem, query, run_id)
    except Exception as exc:  # a dead actor or a bug in a tool is an observation, not a crash
        failure = Failure(error="internal", message=f"{type(exc).__name__} in tool {name!r}: {exc}")
        return ToolAnswer(tool=name, text=None, error=failure)


def _request(
    model: str, messages: list[ChatMessage], config: StackingConfig, seed: int, meta: RequestMeta
) -> CompletionRequest:
    return CompletionRequest(
        model=model,
        messages=tuple(messages),
        temperature=config.temperature,
        max_tokens=config.max_tokens,
        stop=STOP,
        seed=seed,
        meta=meta,
    )


def _observation(answer: ToolAnswer, limit: int) -> str:
    if answer.error is not None or answer.text is None:
        error = answer.error or Failure(error="internal", message="no text")
        return TOOL_FAILED.format(name=answer.tool, error=error.error, message=error.message)
    text = answer.text.strip()
    return text if len(text) <= limit else text[:limit] + " ...[truncated]"


async def react_loop(
    problem: Problem,
    query: str,
    *,
    name: str,
    layer: int,
    model_name: str,
    model: Model,
    tools: Mapping[str, Tool],
    grader: Grader,
    run_id: str,
    seed: int,
    config: StackingConfig,
) -> ToolAnswer:
    """Run one agent's ReAct loop on ``query`` and return its answer with its full trace.

    Args:
        name: the agent's tool name (as its parent sees it).
        layer: the agent's height in the structure (``X_k`` has layer k), recorded in the trace.
        model_name / model: the orchestrating model.
        tools: the agent's tools by name; each is called through ``Tool.ask``.
    """
    names = tuple(tools)
    trace: list[TraceEvent] = [agent_note(name, model_name, layer, names)]
    messages = react_messages(query, names, problem.answer_format, config.max_steps)
    called: list[str] = []
    candidates: list[str | None] = []
    for step in range(config.max_steps):
        # The meta tells the simulator what a real model would read off the prompt.
        meta = RequestMeta(
            problem_id=problem.id,
            run_id=run_id,
            role="agent",
            problem=problem,
            candidates=tuple(candidates),
            tools=names,
            tools_called=tuple(called),
            step=step,
        )
        reply = await model.complete(_request(model_name, messages, config, seed, meta))
        trace.append(CallRecord(model=model_name, role="agent", label=f"{name} step {step}", reply=reply))
        if isinstance(reply, Failure):
            return ToolAnswer(tool=name, text=None, trace=tuple(trace), error=reply, steps=step + 1)
        parsed = parse_react(reply.text)
        match parsed:
            case ReactFinal(text=final):
                remaining = [t for t in names if t not in called]
                if not remaining:
                    answer = await grader.extract(problem, final)
                    return ToolAnswer(tool=name, text=final, answer=answer, trace=tuple(trace), steps=step + 1)
                observation = REFUSE_EARLY_FINAL.format(remaining=", ".join(remaining))
                trace.append(NoteRecord(label="refused_final", data={"step": step, "remaining": remaining}))
            case ReactMalformed(reason=reason):
                observation = INVALID_FORMAT.format(reason=reason)
                trace.append(NoteRecord(label="malformed", data={"step": step, "reason": reason}))
            case ReactAction(tool=tool, query=tool_query) if tool not in tools:
                observation = UNKNOWN_TOOL.format(name=tool, tool_names=", ".join(names))
                trace.append(NoteRecord(label="unknown_tool", data={"step": step, "tool": tool}))
            case ReactAction(tool=tool, query=tool_query):
                got = await _call_tool(tools[tool], tool, problem, tool_query, run_id)
                trace.append(
                    ToolCallRecord(tool=tool, query=tool_query, answer=got.answer, trace=got.trace, error=got.error)
                )
                if got.reused:
                    trace.append(NoteRecord(label="reused", data={"step": step, "tool": tool}))
                if tool not in called:
                    called.append(tool)
                candidates.append(got.answer)
                observation = _observation(got, config.observation_chars)
        kept = reply.text.split("\nObservation:")[0].rstrip()
        messages.append(ChatMessage(role="assistant", content=kept))
        messages.append(ChatMessage(role="user", content=OBSERVATION.format(text=observation)))
    failure = Failure(
        error="steps_exhausted",
        message=f"agent {name!r} gave no accepted Final Answer in {config.max_steps} steps",
        model=model_name,
    )
    return ToolAnswer(tool=name, text=None, trace=tuple(trace), error=failure, steps=config.max_steps)


async def ask_model(
    problem: Problem,
    query: str,
    *,
    name: str,
    model: Model,
    grader: Grader,
    run_id: str,
    seed: int,
    config: StackingConfig,
) -> ToolAnswer:
    """Ask a raw model (``X_0``) a query as a tool: one solver request, its answer extracted."""
    request = CompletionRequest(
        model=name,
        messages=tool_messages(query, problem.answer_format),
        temperature=config.temperature,
        max_tokens=config.max_tokens,
        seed=seed,
        meta=RequestMeta(problem_id=problem.id, run_id=run_id, role="solver", problem=problem),
    )
    reply = await model.complete(request)
    trace: tuple[TraceEvent, ...] = (CallRecord(model=name, role="solver", label="tool", reply=reply),)
    if isinstance(reply, Failure):
        return ToolAnswer(tool=name, text=None, trace=trace, error=reply)
    answer = await grader.extract(problem, reply.text)
    return ToolAnswer(tool=name, text=reply.text, answer=answer, trace=trace)
