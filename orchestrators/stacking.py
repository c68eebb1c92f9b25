"""Hierarchical tool stacking: ask the root agent of a structure, report honest per-layer cost.

The structure (a tree of agents whose tools are models or other agents) is built
into actors by ``experiments.runtime.agent_tree.spawn_for_run``; the runner passes the root
agent as ``collab.tools["root"]``. The root's trace nests every tool's trace, so
``totals_of`` rolls nested tokens and cost up; ``details["per_layer"]`` splits them
by the layer of the node that spent them (``layer_0`` = raw models answering as tools,
``layer_k`` = the orchestrating calls of ``X_k``-height agents).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from orchestrators.base import Collaborators, Outcome
from protocols.config import StackingConfig
from protocols.messages import (
    CallRecord,
    Failure,
    NoteRecord,
    Problem,
    ToolCallRecord,
    TraceEvent,
    totals_of,
)
from protocols.tools import Tool, ToolAnswer


def per_layer(trace: tuple[TraceEvent, ...]) -> dict[str, dict[str, Any]]:
    """Usage, cost and calls of a stacked trace, keyed ``layer_<k>`` by the spender's layer.

    An agent's trace opens with a ``NoteRecord(label="agent", data={"layer": k})``; a
    tool trace without one is a raw model (layer 0). The layers sum to ``totals_of(trace)``.
    """
    calls: dict[int, list[TraceEvent]] = defaultdict(list)

    def walk(events: tuple[TraceEvent, ...], layer: int) -> None:
        for event in events:
            match event:
                case NoteRecord(label="agent", data=data):
                    layer = int(data.get("layer", layer))
                case CallRecord():
                    calls[layer].append(event)
                case ToolCallRecord(trace=inner):
                    walk(inner, 0)

    walk(trace, 0)
    out: dict[str, dict[str, Any]] = {}
    for layer in sorted(calls):
        totals = totals_of(calls[layer])
        out[f"layer_{layer}"] = {
            "prompt_tokens": totals.usage.prompt_tokens,
            "completion_tokens": totals.usage.completion_tokens,
            "total_tokens": totals.usage.total_tokens,
            "cost_usd": totals.cost_usd,
            "calls": totals.calls,
            "failed_calls": totals.failed_calls,
        }
    return out


def reused_count(trace: tuple[TraceEvent, ...]) -> int:
    """How many tool answers anywhere in the tree were served from an agent's cache."""
    count = 0
    for event in trace:
        match event:
            case NoteRecord(label="reused"):
                count += 1
            case ToolCallRecord(trace=inner):
                count += reused_count(inner)
    return count


async def stacking(problem: Problem, config: StackingConfig, collab: Collaborators) -> Outcome:
    """Ask the structure's root agent the problem's question; its Final Answer is the outcome."""
    root: Tool | None = collab.tools.get("root")
    if root is None:
        failure = Failure(
            error="internal",
            message=f"stacking {config.structure!r} needs collab.tools['root']; got {sorted(collab.tools)}",
        )
        return Outcome(final_text=None, error=failure)
    try:
        got = await root.ask(problem, problem.question, collab.run_id)
    except Exception as exc:  # a dead root actor fails this problem, not the run
        failure = Failure(error="internal", message=f"{type(exc).__name__} from root agent: {exc}")
        got = ToolAnswer(tool="root", text=None, error=failure)
    details: dict[str, Any] = {
        "structure": config.structure,
        "steps": got.steps,
        "per_layer": per_layer(got.trace),
        "reused_tool_answers": reused_count(got.trace),
    }
    if got.error is not None or got.text is None:
        error = got.error or Failure(error="internal", message="root agent returned no text")
        return Outcome(final_text=None, trace=got.trace, details=details, error=error)
    return Outcome(final_text=got.text, answer=got.answer, trace=got.trace, details=details)
