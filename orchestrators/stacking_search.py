"""The hierarchical tool stacking search as pure async code over an ``evaluate`` callable (no Ray).

Warm-up: per base model X, evaluate X_0, X_1, X_2 ... while the score strictly improves
(every level is reported). Stacking: take the pool's topN, anchor on the best, evaluate
``Agent[best, *combo]@<anchor's model>`` for every combo of ``tool_number - 1`` others, all
candidates of a layer at once; stop when a layer does not beat the best (plateau), else add
the layer to the pool and repeat. ``experiments.studies.stacking.search`` supplies the
``evaluate`` that runs a candidate as an experiment; the tests supply fake scores.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from itertools import combinations
from typing import Any, NamedTuple

from pydantic import Field

from orchestrators.stacking_structure import Node, agent, parse_structure, render, x_k
from protocols.config import Strict


class Evaluation(Strict):
    """One structure on one problem set: score, cost and when it ran."""

    structure: str
    phase: str
    layer: int
    score: float
    n: int
    correct: int
    errors: int = 0
    total_tokens: int = 0
    tokens_per_problem: float = 0.0
    cost_usd: float = 0.0
    wall_s: float = 0.0
    started_at: float = 0.0
    ended_at: float = 0.0
    run_dir: str = ""
    per_layer: dict[str, Any] = Field(default_factory=dict)
    sources: dict[str, int] = Field(default_factory=dict)


Evaluate = Callable[[Node, str], Coroutine[Any, Any, Evaluation]]
"""Evaluate a structure in a phase (``warmup``, ``layer_<i>``, ``test``...)."""


def rank_key(e: Evaluation) -> tuple[float, int, str]:
    """Best first: higher score, then fewer tokens, then the notation (deterministic ties)."""
    return (-e.score, e.total_tokens, e.structure)


async def warm_up(model: str, evaluate: Evaluate, max_level: int) -> list[Evaluation]:
    """X_0, X_1, ... while the score strictly improves (the level that fails is reported too)."""
    levels: list[Evaluation] = []
    for k in range(max_level + 1):
        got = await evaluate(x_k(model, k), "warmup")
        improved = not levels or got.score > max(e.score for e in levels)
        levels.append(got)
        if not improved:
            break
    return levels


def layer_candidates(pool: Sequence[Evaluation], top_n: int, tool_number: int) -> list[Node]:
    """``Agent[anchor, *combo]`` for every combo of ``tool_number - 1`` of the topN after the anchor."""
    top = sorted(pool, key=rank_key)[:top_n]
    if not top:
        return []
    anchor, others = parse_structure(top[0].structure), top[1:]
    return [
        agent([anchor, *(parse_structure(o.structure) for o in combo)])
        for combo in combinations(others, tool_number - 1)
    ]


class StackResult(NamedTuple):
    """The stacking phase: every layer's evaluations, the winner, and why it stopped."""

    layers: list[list[Evaluation]]
    winner: Evaluation
    stop_reason: str


async def stack(
    pool: Sequence[Evaluation],
    evaluate: Evaluate,
    *,
    top_n: int,
    tool_number: int,
    max_layers: int,
) -> StackResult:
    """Add layers while the best candidate of a layer strictly beats the best so far."""
    pool = list(pool)
    best = min(pool, key=rank_key)
    seen = {e.structure for e in pool}
    layers: list[list[Evaluation]] = []
    for layer in range(1, max_layers + 1):
        todo = [c for c in layer_candidates(pool, top_n, tool_number) if render(c) not in seen]
        if not todo:
            return StackResult(layers, best, "no new candidates")
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(evaluate(c, f"layer_{layer}")) for c in todo]
        results = [t.result() for t in tasks]
        layers.append(results)
        seen.update(e.structure for e in results)
        layer_best = min(results, key=rank_key)
        if layer_best.score <= best.score:
            return StackResult(layers, best, f"plateau at layer {layer}")
        pool.extend(results)
        best = layer_best
    return StackResult(layers, best, f"max_layers={max_layers}")


def max_overlap(evaluations: Sequence[Evaluation]) -> int:
    """How many of these runs were in flight at the same moment (from start/end times)."""
    edges = sorted([(e.started_at, 1) for e in evaluations] + [(e.ended_at, -1) for e in evaluations])
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak
