"""The per-problem job a runner actor executes: orchestrate, grade, record."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from actors.agent import RemoteTool
from actors.handles import is_actor_handle
from actors.model import BatchingRemoteModel
from orchestrators import Collaborators, Outcome, run_orchestrator
from protocols.config import (
    AgentForestConfig,
    DebateConfig,
    ExperimentConfig,
    MavConfig,
    MoAConfig,
    ModelSpec,
    OrchestratorConfig,
    SelfConsistencyConfig,
    SingleConfig,
    SlmMuxConfig,
)
from protocols.interfaces import Grader, Model
from protocols.messages import Failure, Problem, ProblemResult, totals_of


def immediate_replies(spec: ModelSpec) -> bool:
    """True when a model's replies never wait on latency: the simulator with no latency slept."""
    return spec.backend == "sim" and spec.time_scale == 0


def in_runner(spec: ModelSpec, config: ExperimentConfig, shared_pool: bool = False) -> bool:
    """True when each runner computes a model's completions itself, with no model actor.

    The simulator is a pure function of (seed, card, request), and its latency (slept when
    ``time_scale`` > 0) is part of that function, not of the model's load. So a copy in
    the runner gives the completion the model actor would, without the Ray hop
    (submitting those calls was ~13% of a runner's CPU, py-spy; at a 1 s critical path the
    hop and the model actors' CPU cost 0.1-0.2 of the critical-path efficiency, docs/cluster.md)
    or the actor processes' start-up. Injected faults draw the same too: a draw is keyed
    by the request and its attempt, and every attempt at a problem's request comes from
    the runner running it (the driver re-attempts a problem on the same runner).

    Not when the spec asks for what only actors give: ``replicas`` or ``resources``
    (placement), a rate limit every caller shares (``requests_per_minute``,
    ``tokens_per_minute``), or, with latency slept, a ``max_in_flight`` that could bind:
    that cap is one queue across every runner, which only the model actor holds, so a
    slept simulator runs in the runners only when the run cannot have more calls to it
    open at once than the cap (``cap_cannot_bind``), and never with a ``shared_pool``
    (other runs may call the same actors at once, ``slmsim compare``): the cap this run
    cannot reach alone is shared with theirs.
    """
    return (
        spec.backend == "sim"
        and spec.replicas == 1
        and not spec.resources
        and spec.requests_per_minute is None
        and spec.tokens_per_minute is None
        and (immediate_replies(spec) or (not shared_pool and cap_cannot_bind(spec, config)))
    )


def peak_calls(orchestrator: OrchestratorConfig, model: str) -> int | None:
    """The most calls one problem has open to ``model`` at once (None: not known for this orchestrator).

    Rounds run one after another (a debate's rounds, MoA's layers then its aggregator,
    MAV's proposers then its verifiers), so the peak is the largest round's; a backend
    retry re-sends one call, it never adds one.
    """
    match orchestrator:
        case SingleConfig():
            return int(orchestrator.model == model)
        case SelfConsistencyConfig():
            return orchestrator.k if orchestrator.model == model else 0
        case SlmMuxConfig() | AgentForestConfig():
            return orchestrator.k * orchestrator.models.count(model)
        case DebateConfig():
            return orchestrator.models.count(model)
        case MoAConfig():
            return max(orchestrator.proposers.count(model), int(orchestrator.aggregator == model))
        case MavConfig():
            proposed = orchestrator.k * orchestrator.proposers.count(model)
            return max(proposed, orchestrator.k * len(orchestrator.proposers) * orchestrator.verifiers.count(model))
    return None


def cap_cannot_bind(spec: ModelSpec, config: ExperimentConfig) -> bool:
    """True when the run can never have more than ``spec.max_in_flight`` calls to the model open:
    every runner's every problem slot at the orchestrator's peak (``peak_calls``)."""
    peak = peak_calls(config.orchestrator, spec.name)
    run = config.run
    return peak is not None and run.runners * run.problems_in_flight * peak <= spec.max_in_flight


class OrchestratorJob:
    """Runs the configured orchestrator on a problem and grades its final text.

    Picklable: holds the config and actor handles; adapters and graders are built
    lazily in the process that runs it (the runner actor).
    """

    def __init__(
        self,
        config: ExperimentConfig,
        run_id: str,
        models: Mapping[str, Any],
        tools: Mapping[str, Any] | None = None,
    ) -> None:
        self.config = config
        self.run_id = run_id
        self.models = dict(models)
        self.tools = dict(tools or {})
        self._collab: dict[str, Collaborators] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_collab"] = {}
        return state

    def _models(self) -> dict[str, Model]:
        immediate = {s.name: immediate_replies(s) for s in self.config.models}
        return {
            n: BatchingRemoteModel(m, n, immediate.get(n, False)) if is_actor_handle(m) else m
            for n, m in self.models.items()
        }

    def _tools(self) -> dict[str, Any]:
        return {n: RemoteTool(t) if is_actor_handle(t) else t for n, t in self.tools.items()}

    def collaborators(self, problem: Problem) -> Collaborators:
        """The collaborators for a problem's answer format (one grader per format)."""
        fmt = problem.answer_format
        if fmt not in self._collab:
            from datasets import grader_for

            grader: Grader = grader_for(fmt)
            self._collab[fmt] = Collaborators(
                models=self._models(),
                grader=grader,
                run_id=self.run_id,
                seed=self.config.seed,
                tools=self._tools(),
            )
        return self._collab[fmt]

    async def __call__(self, problem: Problem, index: int) -> ProblemResult:
        started = time.perf_counter()
        collab = self.collaborators(problem)
        outcome: Outcome = await run_orchestrator(self.config.orchestrator, problem, collab)
        correct, extracted, reason = False, outcome.answer, None
        if outcome.error is None and outcome.final_text is not None:
            grade = await collab.grader.grade(problem, outcome.final_text)
            correct, extracted, reason = grade.correct, grade.extracted, grade.reason
        elif outcome.error is None:
            reason = "no final answer"
        return ProblemResult(
            **self._identity(problem, index),
            final_text=outcome.final_text,
            answer=extracted,
            correct=correct,
            score=1.0 if correct else 0.0,
            grade_reason=reason,
            error=outcome.error,
            totals=totals_of(outcome.trace),
            trace=outcome.trace,
            details=outcome.details,
            wall_s=time.perf_counter() - started,
        )

    def _identity(self, problem: Problem, index: int) -> dict[str, Any]:
        """The fields every result of this run and problem carries."""
        return {
            "run_id": self.run_id,
            "problem_id": problem.id,
            "index": index,
            "benchmark": problem.benchmark,
            "domain": problem.domain,
            "orchestrator": self.config.orchestrator.kind,
            "reference": problem.reference,
        }

    def failed(self, problem: Problem, index: int, failure: Failure, wall_s: float) -> ProblemResult:
        """The result recorded when the orchestrator itself crashed or timed out."""
        return ProblemResult(
            **self._identity(problem, index),
            error=failure,
            grade_reason=f"error: {failure.error}",
            wall_s=wall_s,
        )
