"""``slmsim alpha-umi run`` in ``mode: loop``: the agent end to end on many tasks at once, tools replayed or real.

The role models are model actors and the tool world is one ``ReplayToolEnv`` actor; the
loops themselves are light and run ``run.problems_in_flight`` at a time in the driver.
Each finished task is one flushed line of ``results.jsonl`` (resume skips it).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

from actors import calculator
from actors.tool_env import RemoteToolEnv, task_world
from experiments.runtime.progress import Progress
from experiments.runtime.results import SUMMARY, ResultsWriter, count_sources
from experiments.runtime.spawn import ACTOR_CPUS
from experiments.studies.alpha_umi.calc_tasks import calculator_records
from experiments.studies.alpha_umi.glpft import shot_texts
from experiments.studies.alpha_umi.rundir import model_pool, prepare_run_dir, remote_models, run_id_of, task_records
from experiments.studies.alpha_umi.toolalpaca_tasks import toolalpaca_records
from orchestrators.alpha_umi.loop import LoopTask, ToolEnv, outcome_details, run_agent
from orchestrators.alpha_umi.prompts import PROMPTS
from orchestrators.alpha_umi.roles import RoleCaller
from orchestrators.alpha_umi.static import build_steps
from protocols.alpha_umi import AlphaUmiConfig, LoopSummary
from protocols.interfaces import Model
from protocols.messages import ProblemResult, Usage, totals_of

ORCHESTRATOR = "alpha_umi_loop"


def loop_tasks(config: AlphaUmiConfig) -> tuple[list[LoopTask], dict[str, dict[str, Any]]]:
    """The tasks the agent sees, and their raw records by task id (for the tool world)."""
    if config.dataset.name == "calculator":
        records, stem, first = calculator_records(config.dataset.count, config.seed), "calculator", 0
    elif config.dataset.name == "toolalpaca":
        start, limit = config.dataset.offset, config.dataset.limit
        everything = toolalpaca_records(config.dataset.path)
        records, stem, first = everything[start : None if limit is None else start + limit], "toolalpaca", start
    else:
        (records, stem), first = task_records(config), config.dataset.offset
    local = "calculator" in config.env.local_tools or config.dataset.name == "calculator"
    tasks, by_id = [], {}
    for i, record in enumerate(records, start=first):
        task_id = {"calculator": f"calculator/{config.seed}/{i}", "toolalpaca": str(record.get("id"))}.get(
            stem, f"toolbench/{stem}/{i}"
        )
        tools = list(record["tools"])
        if local and not any(t["Name"] == "calculator" for t in tools):
            tools.append(calculator.SPEC)
        conclusions = [t["value"] for t in record["conversations"] if t["from"] == "conclusion"]
        tasks.append(
            LoopTask(
                task_id=task_id,
                instruction=str(record["instruction"]),
                tools=tuple(tools),
                gold_steps=tuple(build_steps([record], stem, first=i)),
                gold_answer=conclusions[-1] if conclusions else None,
                gold_calls=len(task_world(record)[0]),
                expected=record.get("expected"),
            )
        )
        by_id[task_id] = {**record, "tools": tools}
    return tasks, by_id


def spawn_env(records: dict[str, dict[str, Any]], local_tools: tuple[str, ...]) -> RemoteToolEnv:
    """The tool world as one async actor shared by every task of the run."""
    return RemoteToolEnv.spawn(records, local_tools, num_cpus=ACTOR_CPUS, max_concurrency=1000)


async def run_task(
    task: LoopTask, index: int, config: AlphaUmiConfig, models: dict[str, Model], env: ToolEnv, run_id: str
) -> ProblemResult:
    started = time.perf_counter()
    shots = shot_texts(config.agent.shots)
    roles = RoleCaller(models, config.agent, seed=config.seed, run_id=run_id, shots=shots)
    prompts = PROMPTS["toolalpaca" if config.dataset.name == "toolalpaca" else "toolbench"]
    out = await run_agent(task, roles, env, config.agent, prompts)
    details = outcome_details(task, out, roles)
    return ProblemResult(
        run_id=run_id,
        problem_id=task.task_id,
        index=index,
        benchmark=config.dataset.name,
        orchestrator=ORCHESTRATOR,
        final_text=out.answer,
        answer=out.status,
        reference=task.expected or task.gold_answer or "",
        correct=bool(details["success"]),
        score=float(details["success"]),
        error=roles.failures[0] if roles.failures else None,
        totals=totals_of(roles.trace),
        trace=tuple(roles.trace),
        details=details,
        wall_s=time.perf_counter() - started,
    )


def summarize_loop(config: AlphaUmiConfig, results: list[ProblemResult], n_expected: int) -> LoopSummary:
    statuses = Counter(r.details["status"] for r in results)
    observations: Counter[str] = Counter()
    usage: dict[str, Usage] = {}
    sources: Counter[str] = Counter()
    for r in results:
        observations.update(r.details["observations"])
        for role, u in r.details["usage_by_role"].items():
            usage[role] = usage.get(role, Usage()) + Usage(**u)
        count_sources(r.trace, sources)
    rouges = [r.details["answer_rouge_l"] for r in results if r.details["answer_rouge_l"] is not None]
    n = max(1, len(results))
    return LoopSummary(
        run_id=run_id_of(config),
        name=config.name,
        variant=config.agent.variant,
        n=len(results),
        n_expected=n_expected,
        finished=statuses["finished"],
        gave_up=statuses["gave_up"],
        exhausted=statuses["exhausted"],
        success=sum(bool(r.details["success"]) for r in results),
        answer_rouge_l=sum(rouges) / len(rouges) if rouges else 0.0,
        mean_steps=sum(r.details["steps"] for r in results) / n,
        mean_model_calls=sum(r.details["model_calls"] for r in results) / n,
        observations=dict(observations),
        hallucinated_calls=observations["hallucinated"],
        errors=sum(r.error is not None for r in results),
        usage_by_role=usage,
        cost_usd=sum(r.totals.cost_usd for r in results),
        sources=dict(sources),
    )


async def run_loop_async(config: AlphaUmiConfig, env: ToolEnv | None = None) -> LoopSummary:
    """Run (or resume) the agent over the configured tasks; ``env`` replaces the tool actor (tests)."""
    started = time.perf_counter()
    tasks, records = loop_tasks(config)
    out = prepare_run_dir(config)
    run_id = run_id_of(config)
    writer = ResultsWriter(out)
    todo = [(i, t) for i, t in enumerate(tasks) if not writer.is_done(t.task_id)]
    pool = model_pool(config) if todo else None
    spawned: RemoteToolEnv | None = None
    bar = Progress(len(tasks), writer.tally, config.name, enabled=config.run.progress)
    try:
        if todo and env is None:
            local = tuple(config.env.local_tools) + (("calculator",) if config.dataset.name == "calculator" else ())
            env = spawned = spawn_env(records, local)
        models: dict[str, Any] = remote_models(pool) if pool is not None else {}
        queue: asyncio.Queue[tuple[int, LoopTask]] = asyncio.Queue()
        for item in todo:
            queue.put_nowait(item)

        async def worker() -> None:
            assert env is not None
            while not queue.empty():
                index, task = queue.get_nowait()
                result = await run_task(task, index, config, models, env, run_id)
                if writer.append(result):
                    bar.update(result)

        async with asyncio.TaskGroup() as group:
            for _ in range(min(config.run.problems_in_flight, max(1, len(todo)))):
                group.create_task(worker())
        writer.finalize()
        ordered = list(writer.kept())
    finally:
        writer.close()
        bar.close()
        if pool is not None:
            pool.shutdown()
        if spawned is not None:
            spawned.shutdown()
    summary = summarize_loop(config, ordered, len(tasks)).model_copy(update={"wall_s": time.perf_counter() - started})
    (out / SUMMARY).write_text(summary.model_dump_json(indent=2) + "\n")
    return summary
