"""Agent Forest ("More agents is all you need"): one majority vote over all models' samples pooled.

Ties: more votes; more models behind the answer; the earliest draw; then a seeded uniform
draw keyed by (run seed, problem id) — documented in docs/slm_mux.md.
"""

from __future__ import annotations

from typing import Any

from orchestrators.base import Collaborators, Outcome
from orchestrators.sampling import decided, draw_grouped
from orchestrators.voting import Vote, majority
from protocols.config import AgentForestConfig
from protocols.messages import Problem


def forest_salt(seed: int, problem_id: str) -> str:
    """The key of Agent Forest's last tie rule: one fair draw per (run seed, problem)."""
    return f"agent_forest/{seed}/{problem_id}"


async def agent_forest(problem: Problem, config: AgentForestConfig, collab: Collaborators) -> Outcome:
    """k samples from every model, pooled; the answer with most votes wins (ties: ``voting.majority``)."""
    drawn, _ = await draw_grouped(
        problem,
        collab,
        config.models,
        config.k,
        temperature=config.temperature,
        max_tokens=config.max_tokens,
        label="agent_forest",
    )
    samples, labels = drawn.samples, drawn.labels
    # Ties (equal votes, equally many models, same earliest draw index) go to a seeded draw,
    # not to the alphabetically first model: the paper votes and names no preference.
    votes = [Vote(lab, s.model, s.sample_index) for lab, s in zip(labels, samples, strict=True)]
    vote = majority(votes, salt=forest_salt(collab.seed, problem.id))
    details: dict[str, Any] = {
        "k": config.k,
        "models": list(config.models),
        "answers": [s.answer for s in samples],
        "labels": list(labels),
        "votes": vote.top,
        "n": vote.n,
        "tie_break": vote.tie_break,
    }
    if vote.label is None:
        return decided(samples, drawn.trace, details, None, "agent_forest")
    # The text shown is the earliest draw of the winning answer (first model in config order among equals).
    chosen = min(
        (s for s, lab in zip(samples, labels, strict=True) if lab == vote.label),
        key=lambda s: (s.sample_index, s.model),
    )
    details["chosen_model"] = chosen.model
    return decided(samples, drawn.trace, details, chosen, "agent_forest")
