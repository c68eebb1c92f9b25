"""Tools of a ReAct agent: anything that answers a query about a problem with a typed answer.

A raw model wrapped as a tool (``X_0``) and an agent (``X_k``) have the same shape, so
an agent's tools may themselves be agents: hierarchical tool stacking.
"""

from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

from pydantic import Field

from protocols.messages import Failure, Frozen, Problem, TraceEvent


class ToolAnswer(Frozen):
    """A tool's reply to one query: its full text, the extracted answer, and its own trace.

    ``error`` is set when the tool produced no usable reply (the model failed, the
    agent ran out of steps); ``text`` and ``answer`` are then None and must never be
    graded as an answer. ``steps`` counts an agent's ReAct steps (0 for a raw model);
    ``reused`` marks an answer served from an agent's per-problem cache during search.
    """

    kind: Literal["tool_answer"] = "tool_answer"
    tool: str
    text: str | None
    answer: str | None = None
    trace: tuple[TraceEvent, ...] = ()
    error: Failure | None = None
    steps: int = Field(default=0, ge=0)
    reused: bool = False


@runtime_checkable
class Tool(Protocol):
    """Anything an agent can call: a raw model adapter, an agent, a Ray handle adapter."""

    async def ask(self, problem: Problem, query: str, run_id: str) -> ToolAnswer: ...
