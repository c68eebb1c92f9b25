"""The run summary written to ``summary.json``."""

from __future__ import annotations

from pydantic import Field

from protocols.messages import Frozen, Usage


class DomainStat(Frozen):
    """Accuracy on one domain (MATH subject, GPQA domain, ...)."""

    n: int
    correct: int
    accuracy: float


class RunSummary(Frozen):
    """Aggregate of a run directory's ``results.jsonl``.

    ``accuracy`` is over problems that produced an answer attempt; problems that
    ended in an error count as wrong and are also counted apart in ``errors``.
    """

    run_id: str
    name: str
    orchestrator: str
    dataset: str
    n: int
    n_expected: int
    correct: int
    accuracy: float
    ci95_low: float
    ci95_high: float
    per_domain: dict[str, DomainStat] = Field(default_factory=dict)
    errors: int = 0
    error_kinds: dict[str, int] = Field(default_factory=dict)
    open_failures: int = 0
    """Results that are not final (a transient failure: outage, 429, 5xx, dead actor); a re-run retries them."""
    missing: int = 0
    """Problems of the dataset with no result at all (an aborted run)."""
    usage: Usage = Field(default_factory=Usage)
    tokens_per_problem: float = 0.0
    cost_usd: float = 0.0
    calls: int = 0
    failed_calls: int = 0
    retries: int = 0
    latency_p50_s: float = 0.0
    latency_p95_s: float = 0.0
    sources: dict[str, int] = Field(default_factory=dict)
    """Problems whose completions came from each backend kind: sim, live, replay."""
    wall_s: float = 0.0
