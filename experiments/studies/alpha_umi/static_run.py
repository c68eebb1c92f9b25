"""``slmsim alpha-umi static``: the teacher-forced static evaluation, one result line per gold planner step.

Steps run concurrently (``run.problems_in_flight`` at once) against the role models'
Ray actors; each finished step is appended and flushed, so a killed run resumes where
it stopped. ``summary.json`` is recomputed from ``results.jsonl`` alone.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

from experiments.runtime.progress import Progress
from experiments.runtime.results import SUMMARY, ResultsWriter, count_sources
from experiments.studies.alpha_umi.glpft import shot_texts
from experiments.studies.alpha_umi.rundir import model_pool, prepare_run_dir, remote_models, run_id_of, task_records
from orchestrators.alpha_umi.metrics import Parsed, StepScore, aggregate, parse_output, score_step
from orchestrators.alpha_umi.roles import RoleCaller
from orchestrators.alpha_umi.static import (
    StaticStep,
    baseline_prediction,
    build_steps,
    predict_multi,
    predict_single,
)
from protocols.alpha_umi import AlphaUmiConfig, StaticSummary
from protocols.interfaces import Model
from protocols.messages import ProblemResult, Usage, totals_of

ORCHESTRATOR = "alpha_umi_static"


async def evaluate_step(
    step: StaticStep, config: AlphaUmiConfig, models: dict[str, Model], run_id: str
) -> ProblemResult:
    """Predict one step (models or a reference predictor) and record what each metric needs."""
    started = time.perf_counter()
    shots = shot_texts(config.agent.shots)
    roles = RoleCaller(models, config.agent, seed=config.seed, run_id=run_id, shots=shots)
    if config.predictor != "models":
        text = baseline_prediction(step, config.predictor)
        pred = parse_output(text)
    elif config.agent.variant == "single":
        text, pred = await predict_single(step, roles)
    else:
        text, pred = await predict_multi(step, roles, config.agent)
    ref = parse_output(step.reference)
    score = score_step(ref, pred, step.tool_names)
    return ProblemResult(
        run_id=run_id,
        problem_id=step.id,
        index=step.index,
        benchmark="toolbench",
        orchestrator=ORCHESTRATOR,
        final_text=text,
        answer=pred.plan,
        reference=step.reference,
        correct=score.plan_correct,
        score=float(score.plan_correct),
        error=roles.failures[0] if roles.failures else None,
        totals=totals_of(roles.trace),
        trace=tuple(roles.trace),
        details={
            "task_id": step.task_id,
            "predictor": config.predictor,
            "tool_names": list(step.tool_names),
            "ref": ref._asdict(),
            "pred": pred._asdict(),
            "usage_by_role": {r: u.model_dump() for r, u in roles.usage.items()},
        },
        wall_s=time.perf_counter() - started,
    )


def step_score(result: ProblemResult) -> StepScore:
    """The metric contributions of a recorded step, recomputed from its line."""
    d = result.details
    return score_step(Parsed(**d["ref"]), Parsed(**d["pred"]), d["tool_names"])


def summarize_static(config: AlphaUmiConfig, results: list[ProblemResult], n_expected: int) -> StaticSummary:
    scores = [step_score(r) for r in results]
    usage: dict[str, Usage] = {}
    for r in results:
        for role, u in r.details.get("usage_by_role", {}).items():
            usage[role] = usage.get(role, Usage()) + Usage(**u)
    sources: Counter[str] = Counter()
    for r in results:
        count_sources(r.trace, sources)
    plans = Counter(r.details["ref"]["plan"] for r in results)
    majority = max(plans.values()) / len(results) if results else 0.0
    return StaticSummary(
        run_id=run_id_of(config),
        name=config.name,
        predictor=config.predictor,
        variant=config.agent.variant,
        n=len(results),
        n_expected=n_expected,
        original=aggregate(scores),
        fixed=aggregate(scores, fixed=True),
        majority_plan_acc=majority,
        errors=sum(r.error is not None for r in results),
        usage_by_role=usage,
        cost_usd=sum(r.totals.cost_usd for r in results),
        sources=dict(sources) if sources else {f"baseline:{config.predictor}": len(results)},
    )


async def run_static_async(config: AlphaUmiConfig) -> StaticSummary:
    """Run (or resume) a static evaluation into ``config.run.out_dir``."""
    started = time.perf_counter()
    records, stem = task_records(config)
    steps = build_steps(records, stem, first=config.dataset.offset)
    out = prepare_run_dir(config)
    run_id = run_id_of(config)
    writer = ResultsWriter(out)
    todo = [s for s in steps if not writer.is_done(s.id)]
    pool = model_pool(config) if todo and config.predictor == "models" else None
    bar = Progress(len(steps), writer.tally, config.name, enabled=config.run.progress)
    try:
        models: dict[str, Any] = remote_models(pool) if pool is not None else {}
        evaluated, recomputed = await _drive(todo, config, models, run_id, writer, bar)
        writer.finalize()
        ordered = list(writer.kept())
    finally:
        writer.close()
        bar.close()
        if pool is not None:
            pool.shutdown()
    summary = summarize_static(config, ordered, len(steps))
    summary = summary.model_copy(
        update={
            "wall_s": time.perf_counter() - started,
            "evaluated_this_run": evaluated,
            "recomputed": recomputed,
        }
    )
    (out / SUMMARY).write_text(summary.model_dump_json(indent=2) + "\n")
    return summary


async def _drive(
    todo: list[StaticStep],
    config: AlphaUmiConfig,
    models: dict[str, Model],
    run_id: str,
    writer: ResultsWriter,
    bar: Progress,
) -> tuple[int, int]:
    """Evaluate ``todo``; return (steps evaluated, of which already had a result)."""
    queue: asyncio.Queue[StaticStep] = asyncio.Queue()
    for step in todo:
        queue.put_nowait(step)
    counts = [0, 0]

    async def worker() -> None:
        while not queue.empty():
            step = queue.get_nowait()
            result = await evaluate_step(step, config, models, run_id)
            counts[0] += 1
            if writer.append(result):
                bar.update(result)
            else:  # a finished step evaluated again: its result is dropped, its calls wasted
                counts[1] += 1

    async with asyncio.TaskGroup() as group:
        for _ in range(min(config.run.problems_in_flight, max(1, len(todo)))):
            group.create_task(worker())
    return counts[0], counts[1]
