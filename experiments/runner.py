"""The parallel experiment driver: shard problems over runner actors, stream results to disk.

``run_experiment(config)`` is the whole life of a run: validate the run directory,
load problems, skip those already done (resume), spawn model and runner actors,
keep a bounded number of problems in flight, append each result as it arrives,
then write the summary. Killing it at any point loses no finished result.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import structlog

from experiments.config_io import ConfigError, dump_config
from experiments.job import OrchestratorJob
from experiments.progress import Progress
from experiments.rayrt import ensure_ray, spawn_model, spawn_runner
from experiments.results import CONFIG, LOG, SUMMARY, ResultsWriter, summarize
from protocols.config import ExperimentConfig, ModelSpec, SlmMuxConfig, StackingConfig, StoreSpec
from protocols.messages import Problem, ProblemResult
from protocols.summary import RunSummary

# Per-model knobs that change how fast or how politely a run executes, never its results.
EXECUTION_FIELDS = {
    "max_in_flight",
    "requests_per_minute",
    "tokens_per_minute",
    "timeout_s",
    "max_retries",
    "time_scale",
}


def config_identity(config: ExperimentConfig) -> dict[str, Any]:
    """What makes two runs the same experiment: everything but how it executes.

    Resuming may change ``run.*``, the response store's mode (a recorded run re-run in
    replay mode is the same experiment, so it gets the same run id) and per-model
    execution knobs (e.g. more requests in flight), but not the dataset, models,
    orchestrator or seed. Each completion still says where it came from (``source``).
    """
    tree = config.model_dump(mode="json", exclude={"run", "store"})
    for model in tree["models"]:
        for key in EXECUTION_FIELDS:
            model.pop(key, None)
    return tree


def run_id_of(config: ExperimentConfig) -> str:
    """A deterministic id: the config name plus a hash of its identity."""
    digest = hashlib.sha256(json.dumps(config_identity(config), sort_keys=True).encode()).hexdigest()[:10]
    return f"{config.name}-{digest}"


def store_dir_of(config: ExperimentConfig) -> Path:
    return config.store.path or (config.run.out_dir / "store")


class ModelPool:
    """One model actor per model spec, shared by every run that uses the pool."""

    def __init__(self, seed: int, store: StoreSpec, store_dir: Path | None) -> None:
        self.seed = seed
        self.store = store
        self.store_dir = store_dir
        self.handles: dict[str, Any] = {}
        self.specs: dict[str, ModelSpec] = {}

    def ensure(self, specs: tuple[ModelSpec, ...] | list[ModelSpec]) -> dict[str, Any]:
        """Spawn the models not yet in the pool; a name reused with another spec is an error."""
        for spec in specs:
            known = self.specs.get(spec.name)
            if known is not None and known != spec:
                raise ConfigError(f"model {spec.name!r} is already in the pool with a different spec")
            if known is None:
                self.handles[spec.name] = spawn_model(spec, self.seed, self.store, self.store_dir)
                self.specs[spec.name] = spec
        return {s.name: self.handles[s.name] for s in specs}

    def shutdown(self) -> None:
        import ray

        for handle in self.handles.values():
            ray.kill(handle)
        self.handles.clear()
        self.specs.clear()


def prepare_run_dir(config: ExperimentConfig) -> Path:
    """Create the run directory, or check that an existing one holds this same experiment."""
    out = config.run.out_dir
    saved = out / CONFIG
    if saved.exists():
        import yaml

        from experiments.config_io import config_from_tree

        previous = config_from_tree(yaml.safe_load(saved.read_text()))
        if config_identity(previous) != config_identity(config):
            raise ConfigError(
                f"run directory {str(out)!r} holds a different experiment; choose another run.out_dir or delete it"
            )
    out.mkdir(parents=True, exist_ok=True)
    tmp = saved.with_suffix(".tmp")
    tmp.write_text(dump_config(config))
    tmp.replace(saved)
    return out


def make_logger(path: Path) -> tuple[Any, Any]:
    """A structlog JSON-lines logger writing to ``path`` (no global configuration touched)."""
    fh = path.open("a", encoding="utf-8")
    logger = structlog.wrap_logger(
        structlog.WriteLogger(fh),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(sort_keys=True),
        ],
    )
    return logger, fh


async def _spawn_collaborators(
    config: ExperimentConfig, model_handles: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Actors an orchestrator needs beyond models: agent trees, the MUX judge."""
    tools: dict[str, Any] = {}
    extras: dict[str, Any] = {}
    if isinstance(config.orchestrator, StackingConfig):
        from experiments.structure import spawn_for_run

        tools = spawn_for_run(config, model_handles)
    if isinstance(config.orchestrator, SlmMuxConfig):
        from experiments.rayrt import spawn_mux_judge

        extras["mux_judge"] = spawn_mux_judge()
    return tools, extras


async def run_experiment_async(
    config: ExperimentConfig,
    *,
    models: ModelPool | None = None,
    problems: list[Problem] | None = None,
    progress_label: str | None = None,
) -> RunSummary:
    """Run (or resume) one experiment into ``config.run.out_dir``; returns its summary.

    Args:
        config: the validated experiment.
        models: a shared pool of model actors (e.g. all candidates of a search layer);
            a private pool is made and torn down when None.
        problems: the problems to use instead of loading ``config.dataset``.
        progress_label: the progress bar's title (defaults to the config name).
    """
    from datasets import load_problems

    started = time.perf_counter()
    if problems is None:
        # Before the run directory exists: a dataset that cannot load leaves nothing behind.
        problems = load_problems(config.dataset)
    out = prepare_run_dir(config)
    run_id = run_id_of(config)
    writer = ResultsWriter(out)
    todo = [(i, p) for i, p in enumerate(problems) if p.id not in writer.done_ids]
    log, log_fh = make_logger(out / LOG)
    log.info(
        "run_start",
        run_id=run_id,
        name=config.name,
        orchestrator=config.orchestrator.kind,
        problems=len(problems),
        already_done=len(problems) - len(todo),
    )
    own_pool = models is None
    pool = models or ModelPool(config.seed, config.store, store_dir_of(config))
    bar = Progress(
        total=len(problems),
        done=list(writer.results.values()),
        label=progress_label or config.name,
        enabled=config.run.progress,
    )
    try:
        if todo:
            ensure_ray(config.run.address)
            handles = pool.ensure(config.models)
            tools, extras = await _spawn_collaborators(config, handles)
            job = OrchestratorJob(config, run_id, handles, tools, extras)
            runners = [
                spawn_runner(job, config.run.problems_in_flight, config.run.problem_timeout_s)
                for _ in range(min(config.run.runners, len(todo)))
            ]
            await _drive(todo, runners, config.run.problems_in_flight, writer, bar, log)
        ordered = writer.finalize()
    finally:
        writer.close()
        bar.close()
        if own_pool and pool.handles:
            pool.shutdown()
    summary = summarize(
        ordered,
        run_id=run_id,
        name=config.name,
        orchestrator=config.orchestrator.kind,
        dataset=config.dataset.name,
        n_expected=len(problems),
    ).model_copy(update={"wall_s": time.perf_counter() - started})
    (out / SUMMARY).write_text(summary.model_dump_json(indent=2) + "\n")
    log.info("run_end", run_id=run_id, n=summary.n, accuracy=summary.accuracy, wall_s=summary.wall_s)
    log_fh.close()
    return summary


async def _drive(
    todo: list[tuple[int, Problem]],
    runners: list[Any],
    per_runner: int,
    writer: ResultsWriter,
    bar: Progress,
    log: Any,
) -> None:
    """Keep up to ``per_runner`` problems in flight on each runner; record results as they land."""
    queue: asyncio.Queue[tuple[int, Problem]] = asyncio.Queue()
    for item in todo:
        queue.put_nowait(item)

    async def feed(runner: Any) -> None:
        while not queue.empty():
            index, problem = queue.get_nowait()
            result: ProblemResult = await runner.run.remote(problem, index)
            if writer.append(result):
                bar.update(result)
                log.info(
                    "problem_done",
                    problem_id=result.problem_id,
                    correct=result.correct,
                    error=result.error.error if result.error else None,
                    wall_s=round(result.wall_s, 4),
                )

    async with asyncio.TaskGroup() as group:
        for runner in runners:
            for _ in range(per_runner):
                group.create_task(feed(runner))


def run_experiment(config: ExperimentConfig, **kwargs: Any) -> RunSummary:
    """Synchronous entry point around ``run_experiment_async``."""
    return asyncio.run(run_experiment_async(config, **kwargs))


def main(argv: list[str] | None = None) -> int:
    """``python -m experiments.runner CONFIG [key=value ...]`` (also what ``ray job submit`` runs)."""
    from experiments.cli import main as cli_main

    return cli_main(["run", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
