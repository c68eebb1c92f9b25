"""The alpha-UMi agent loop, end to end: planner -> caller -> tool -> ... -> summarizer (or one backbone model).

Pure async code over a ``RoleCaller`` (the models) and a ``ToolEnv``; it follows the
original real-time agent (``ToolBench-multiLLM/.../collab_agent_model.py``): the shared
transcript ``user: ...</s>assistant: <rationale>Next: caller.</s>caller: Action: ...</s>
observation: ...``, observations cut to ``observation_chars`` (1,024), a planner output
without a decision token sent to the caller (or, as an option, the summarizer), and the
task ended by ``Next: give up.``. Steps and model calls are bounded.

``gold`` (the recorded trajectory) only feeds ``meta.extra["gold_next"]`` for the
simulator, advanced by the recorded calls the agent has reproduced; real models never see it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from orchestrators.alpha_umi.metrics import rouge_l_f
from orchestrators.alpha_umi.prompts import (
    CALLER_CUE,
    DIVERSITY_PROMPT,
    NEXT_TOKENS,
    PLANNER_CUE,
    PROMPTS,
    SEP,
    SUMMARIZER_CUE,
    PromptSet,
    clean_output,
    parse_backbone,
    parse_caller,
    parse_planner,
    render,
    turn_text,
)
from orchestrators.alpha_umi.roles import RoleCaller
from orchestrators.alpha_umi.static import StaticStep, backbone_target
from protocols.alpha_umi import AgentSpec, Observation, ToolCall
from protocols.messages import Failure, ToolCallRecord

Status = Literal["finished", "gave_up", "exhausted"]


class ToolEnv(Protocol):
    """Anything that answers a tool call with an observation (the replay actor, a test double)."""

    async def call(self, request: ToolCall) -> Observation: ...


@dataclass(frozen=True, slots=True)
class LoopTask:
    """One task: the instruction and tools the agent sees, and the recorded trajectory's steps (simulator only)."""

    task_id: str
    instruction: str
    tools: tuple[dict[str, Any], ...]
    gold_steps: tuple[StaticStep, ...] = ()
    gold_answer: str | None = None
    gold_calls: int = 0
    expected: str | None = None
    """A task with a known exact result (the calculator tasks): success means the answer contains it."""

    @property
    def tool_names(self) -> tuple[str, ...]:
        return tuple(str(t["Name"]) for t in self.tools)


@dataclass
class LoopOutcome:
    """What happened on one task."""

    status: Status
    answer: str | None
    steps: int
    transcript: str
    observations: dict[str, int] = field(default_factory=dict)
    reproduced: set[int] = field(default_factory=set)
    calls: list[dict[str, str]] = field(default_factory=list)
    """The calls of this chain (name, arguments, output), for the next chain's diversity prompt."""
    chains: int = 1
    """Indices of the recorded calls the agent reproduced exactly."""

    def success(self, task: LoopTask) -> bool:
        """Finished, and: the answer holds the exact result (calculator), or every recorded call was reproduced."""
        if self.status != "finished":
            return False
        if task.expected is not None:
            return task.expected in (self.answer or "")
        return len(self.reproduced) >= task.gold_calls

    def answer_rouge(self, task: LoopTask) -> float | None:
        if task.gold_answer is None:
            return None
        return rouge_l_f(self.answer or "none", task.gold_answer)


class _Gold:
    """Where the recorded trajectory stands, given the recorded calls reproduced so far."""

    def __init__(self, task: LoopTask) -> None:
        self.steps = task.gold_steps
        self.pointer = 0
        self.call_positions = [i for i, s in enumerate(self.steps) if s.gold_decision == "caller"]

    def advance(self, gold_index: int | None) -> None:
        if gold_index is not None and gold_index < len(self.call_positions):
            self.pointer = max(self.pointer, self.call_positions[gold_index] + 1)

    def step(self) -> StaticStep | None:
        if not self.steps:
            return None
        return self.steps[min(self.pointer, len(self.steps) - 1)]

    def planner(self) -> str:
        s = self.step()
        return s.gold_planner if s is not None else ""

    def next_of(self, decision: str) -> str:
        s = self.step()
        if s is None or s.gold_decision != decision:
            return ""
        return s.gold_next or ""


async def _observe(
    env: ToolEnv, task: LoopTask, action: str, action_input: str, out: LoopOutcome, roles: RoleCaller
) -> Observation:
    obs = await env.call(ToolCall(task_id=task.task_id, tool=action, action_input=action_input))
    out.observations[obs.status] = out.observations.get(obs.status, 0) + 1
    if obs.gold_index is not None:
        out.reproduced.add(obs.gold_index)
    out.calls.append({"name": action, "arguments": action_input, "function_output": obs.text})
    roles.trace.append(
        ToolCallRecord(
            tool=action,
            query=action_input,
            answer=obs.text,
            error=None if obs.status in ("recorded", "local") else Failure(error="client", message=obs.status),
        )
    )
    return obs


@dataclass
class _Episode:
    """One chain of one task in flight: what a step reads and the transcript it extends."""

    task: LoopTask
    roles: RoleCaller
    env: ToolEnv
    agent: AgentSpec
    prompts: PromptSet
    history: str
    out: LoopOutcome
    tools: list[dict[str, Any]]
    gold: _Gold


Step = Callable[[_Episode, int], Awaitable[bool]]
"""One step of a variant; True when the episode ended (finished or gave up)."""


async def _run(
    step_fn: Step,
    calls_per_step: int,
    task: LoopTask,
    roles: RoleCaller,
    env: ToolEnv,
    agent: AgentSpec,
    prompts: PromptSet,
    start: str | None,
    max_steps: int | None,
) -> LoopOutcome:
    """The loop both variants share: bounded steps and model calls, one transcript."""
    history = start if start is not None else turn_text("user", task.instruction)
    ep = _Episode(
        task,
        roles,
        env,
        agent,
        prompts,
        history,
        LoopOutcome("exhausted", None, 0, history),
        list(task.tools),
        _Gold(task),
    )
    for step in range(max_steps or agent.max_steps):
        if roles.calls + calls_per_step > agent.max_model_calls:
            break
        ep.out.steps = step + 1
        if await step_fn(ep, step):
            break
    ep.out.transcript = ep.history
    return ep.out


async def _multi_step(ep: _Episode, step: int) -> bool:
    task, roles, agent, prompts, tools, gold = ep.task, ep.roles, ep.agent, ep.prompts, ep.tools, ep.gold
    prompt = render(prompts.planner, tools, ep.history) + PLANNER_CUE
    raw = await roles.ask("planner", prompt, task, gold=gold.planner(), step=step)
    planner_text, decision = parse_planner(clean_output(raw).strip())
    if decision is None:
        decision = "caller" if agent.no_decision == "caller" else "conclusion"
        planner_text = f"{planner_text} {NEXT_TOKENS[decision]}"
    if decision == "give up":
        ep.history += turn_text("assistant", planner_text)
        ep.out.status = "gave_up"
        return True
    handoff = ep.history + f"{agent.handoff_prefix}: {planner_text}{SEP}"
    if decision == "conclusion":
        prompt = render(prompts.summarizer, tools, handoff, planner_text) + SUMMARIZER_CUE
        gold_answer = gold.next_of("conclusion")
        answer = clean_output((await roles.ask("summarizer", prompt, task, gold=gold_answer, step=step)).strip())
        ep.history += turn_text("assistant", planner_text) + turn_text("conclusion", answer)
        ep.out.status, ep.out.answer = "finished", answer
        return True
    prompt = render(prompts.caller, tools, handoff, planner_text) + CALLER_CUE
    call_text = clean_output((await roles.ask("caller", prompt, task, gold=gold.next_of("caller"), step=step)).strip())
    action, action_input = parse_caller(call_text)
    obs = await _observe(ep.env, task, action, action_input, ep.out, roles)
    gold.advance(obs.gold_index)
    ep.history += turn_text("assistant", planner_text) + turn_text("caller", call_text)
    ep.history += turn_text("observation", obs.text[: agent.observation_chars])
    return False


async def _single_step(ep: _Episode, step: int) -> bool:
    prompt = render(ep.prompts.backbone, ep.tools, ep.history) + PLANNER_CUE
    raw = await ep.roles.ask("backbone", prompt, ep.task, gold=_backbone_gold(ep.gold), step=step)
    text = clean_output(raw.strip())
    reply = parse_backbone(text)
    ep.history += turn_text("assistant", text)
    if reply.decision == "give up":
        ep.out.status = "gave_up"
        return True
    if reply.decision == "conclusion":
        ep.out.status, ep.out.answer = "finished", reply.answer
        return True
    obs = await _observe(ep.env, ep.task, reply.action or "none", reply.action_input or "{}", ep.out, ep.roles)
    ep.gold.advance(obs.gold_index)
    ep.history += turn_text("observation", obs.text[: ep.agent.observation_chars])
    return False


async def run_multi(
    task: LoopTask,
    roles: RoleCaller,
    env: ToolEnv,
    agent: AgentSpec,
    prompts: PromptSet = PROMPTS["toolbench"],
    *,
    start: str | None = None,
    max_steps: int | None = None,
) -> LoopOutcome:
    """alpha-UMi (or multi-LLM one-stage, when the roles share one model) on one task."""
    # A step makes two model calls (planner, then caller or summarizer).
    return await _run(_multi_step, 2, task, roles, env, agent, prompts, start, max_steps)


async def run_single(
    task: LoopTask,
    roles: RoleCaller,
    env: ToolEnv,
    agent: AgentSpec,
    prompts: PromptSet = PROMPTS["toolbench"],
    *,
    start: str | None = None,
    max_steps: int | None = None,
) -> LoopOutcome:
    """The single-LLM baseline: one backbone model writes thought + call, or the conclusion."""
    return await _run(_single_step, 1, task, roles, env, agent, prompts, start, max_steps)


async def run_agent(
    task: LoopTask, roles: RoleCaller, env: ToolEnv, agent: AgentSpec, prompts: PromptSet = PROMPTS["toolbench"]
) -> LoopOutcome:
    """The configured agent on one task: one chain, or DFSDT-style chains restarted with the diversity prompt.

    A simplification of DFSDT: each new chain restarts from the instruction (the original backtracks to
    the last node with untried children), with the original ``DIVERSITY_PROMPT`` listing every call tried.
    """
    one = run_single if agent.variant == "single" else run_multi
    if agent.chains == 1:
        return await one(task, roles, env, agent, prompts)
    tried: list[dict[str, str]] = []
    steps = chains = 0
    while chains < agent.chains:
        chains += 1
        start = turn_text("user", task.instruction)
        if tried:
            listing = json.dumps(tried, indent=2, ensure_ascii=False) + "\n"
            start += turn_text("user", DIVERSITY_PROMPT.replace("{previous_candidate}", listing))
        out = await one(task, roles, env, agent, prompts, start=start, max_steps=agent.chain_steps)
        steps += out.steps
        tried += out.calls
        if out.status == "finished" or roles.calls >= agent.max_model_calls:
            break
    out.steps, out.chains = steps, chains
    return out


def _backbone_gold(gold: _Gold) -> str:
    s = gold.step()
    return backbone_target(s) if s is not None else ""


def outcome_details(task: LoopTask, out: LoopOutcome, roles: RoleCaller) -> dict[str, Any]:
    """The per-task facts the loop summary aggregates (kept in ``ProblemResult.details``)."""
    rouge = out.answer_rouge(task)
    return {
        "status": out.status,
        "steps": out.steps,
        "chains": out.chains,
        "model_calls": roles.calls,
        "observations": out.observations,
        "hallucinated_calls": out.observations.get("hallucinated", 0),
        "reproduced_calls": sorted(out.reproduced),
        "gold_calls": task.gold_calls,
        "success": out.success(task),
        "answer_rouge_l": rouge,
        "usage_by_role": {r: u.model_dump() for r, u in roles.usage.items()},
        "transcript": out.transcript,
    }
