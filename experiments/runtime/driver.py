"""The parallel experiment driver: shard problems over runner actors, stream results to disk.

``run_experiment(config)`` is the whole life of a run: check everything that can be
checked before Ray starts (``experiments.runtime.preflight``), lock the run directory, load
problems, skip those already done (resume), spawn supervised model and runner actors,
keep a bounded number of problems in flight, re-attempt problems that hit a transient
failure, append each result as it arrives, then write the summary. Killing it at any
point loses no finished result.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import structlog

from actors.model import ModelActor
from experiments.runtime.config_io import ConfigError, config_identity, dump_config
from experiments.runtime.errors import RunAborted
from experiments.runtime.feed import Supervisor, drive
from experiments.runtime.job import OrchestratorJob, immediate_replies, in_runner
from experiments.runtime.lock import hold
from experiments.runtime.placement import ReplicaSet, alive_nodes, check_runner_resources, replica_nodes
from experiments.runtime.preflight import check_existing_run, check_run
from experiments.runtime.progress import Progress
from experiments.runtime.results import CONFIG, LOG, SUMMARY, ResultsWriter
from experiments.runtime.source import ProblemSource, pending, unfinished
from experiments.runtime.spawn import DEFAULT_RESTARTS, ensure_ray, spawn_model, spawn_runner
from protocols.config import ExperimentConfig, ModelSpec, StackingConfig, StoreSpec
from protocols.messages import Problem
from protocols.summary import RunSummary


def run_id_of(config: ExperimentConfig) -> str:
    """A deterministic id: the config name plus a hash of its identity."""
    digest = hashlib.sha256(json.dumps(config_identity(config), sort_keys=True).encode()).hexdigest()[:10]
    return f"{config.name}-{digest}"


def store_dir_of(config: ExperimentConfig) -> Path:
    return config.store.path or (config.run.out_dir / "store")


class ModelPool:
    """The model actors of each model spec, shared by every run that uses the pool.

    A spec with ``replicas: 1`` (the default) gets one actor handle; more replicas get a
    ``ReplicaSet`` placed over the cluster's nodes (``experiments.runtime.placement``).
    """

    def __init__(self, seed: int, store: StoreSpec, store_dir: Path | None, restarts: int = DEFAULT_RESTARTS) -> None:
        self.seed = seed
        self.store = store
        self.store_dir = store_dir
        self.restarts = restarts
        self.handles: dict[str, Any] = {}
        self.specs: dict[str, ModelSpec] = {}

    def ensure(self, specs: tuple[ModelSpec, ...] | list[ModelSpec]) -> dict[str, Any]:
        """Spawn the models not yet in the pool; a name reused with another spec is an error."""
        for spec in specs:
            known = self.specs.get(spec.name)
            if known is not None and known != spec:
                raise ConfigError(f"model {spec.name!r} is already in the pool with a different spec")
            if known is None:
                self.handles[spec.name] = self._spawn(spec)
                self.specs[spec.name] = spec
        return {s.name: self.handles[s.name] for s in specs}

    def _spawn(self, spec: ModelSpec) -> Any:
        if spec.replicas == 1 and not spec.resources:
            return spawn_model(spec, self.seed, self.store, self.store_dir, self.restarts)
        try:
            nodes = replica_nodes(spec, alive_nodes())
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        replicas = [
            (node, spawn_model(spec, self.seed, self.store, self.store_dir, self.restarts, node)) for node in nodes
        ]
        return replicas[0][1] if len(replicas) == 1 else ReplicaSet(spec.name, replicas, immediate_replies(spec))

    def actors(self) -> list[tuple[str, Any]]:
        """Every model actor with a name for messages, one per replica."""
        out = []
        for name, handle in self.handles.items():
            group = handle.handles if isinstance(handle, ReplicaSet) else [handle]
            suffix = len(group) > 1
            out += [(f"model actor {name!r}" + (f" replica {i}" if suffix else ""), h) for i, h in enumerate(group)]
        return out

    def shutdown(self) -> None:
        import ray

        for _, handle in self.actors():
            ray.kill(handle)
        self.handles.clear()
        self.specs.clear()


def prepare_run_dir(config: ExperimentConfig) -> Path:
    """Create the run directory, or check (again, now under the lock) that it holds this same experiment."""
    check_existing_run(config)
    out = config.run.out_dir
    saved = out / CONFIG
    out.mkdir(parents=True, exist_ok=True)
    tmp = saved.with_suffix(".tmp")
    tmp.write_text(dump_config(config))
    tmp.replace(saved)
    return out


def make_logger(path: Path) -> tuple[Any, Any]:
    """A structlog JSON-lines logger writing to ``path`` (no global configuration touched).

    orjson renders the lines and the logger is bound once (``wrap_logger`` alone gives a
    proxy that builds a logger on every call): half the cost of a line, which the driver
    pays per problem (``problem_done``).
    """
    fh = path.open("ab")
    logger = structlog.wrap_logger(
        structlog.BytesLogger(fh),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(
                serializer=orjson.dumps, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=repr
            ),
        ],
    ).bind()
    return logger, fh


def _spawn_tools(config: ExperimentConfig, model_handles: dict[str, Any]) -> dict[str, Any]:
    """Actors an orchestrator needs beyond models: the agent trees of stacking.

    The SLM-MUX judge is not one: each runner judges its own problems in process, with
    the grader it grades with (its symbolic checks in that grader's worker pool). One
    shared judge actor was a single process serving every runner and one more Ray hop a
    problem, the largest CPU cost of a simulated run after the simulator (docs/cluster.md).
    """
    if not isinstance(config.orchestrator, StackingConfig):
        return {}
    from experiments.runtime.agent_tree import spawn_for_run

    return spawn_for_run(config, model_handles)


def runner_models(config: ExperimentConfig, shared_pool: bool = False) -> dict[str, ModelActor]:
    """The models each runner computes itself (``job.in_runner``, given whether the run shares
    its ``ModelPool``): plain ``ModelActor`` objects, each building its backend in the runner
    that unpickles it. None for stacking, whose agent actors call the model actors."""
    if isinstance(config.orchestrator, StackingConfig):
        return {}
    store_dir = str(store_dir_of(config))
    return {
        s.name: ModelActor(s, config.seed, config.store, store_dir)
        for s in config.models
        if in_runner(s, config, shared_pool)
    }


async def run_experiment_async(
    config: ExperimentConfig,
    *,
    models: ModelPool | None = None,
    problems: Sequence[Problem] | ProblemSource | None = None,
    progress_label: str | None = None,
    retry_failed: bool = False,
    sim_in_runners: bool = True,
) -> RunSummary:
    """Run (or resume) one experiment into ``config.run.out_dir``; returns its summary.

    Resume skips the problems with a final result; problems whose result carries a
    transient failure are attempted again (every failed one with ``retry_failed``).

    Args:
        config: the validated experiment.
        models: a shared pool of model actors (e.g. all candidates of a search layer);
            a private pool is made and torn down when None.
        problems: the problems to use instead of ``config.dataset`` (a list, or a
            ``ProblemSource`` to stream them); ``config.dataset`` is streamed, never held whole.
        progress_label: the progress bar's title (defaults to the config name).
        retry_failed: also re-attempt problems recorded with a permanent failure.
        sim_in_runners: let runners compute the models ``job.in_runner`` allows themselves;
            False puts every model behind its actor (benchmarks and tests compare the two).

    Raises:
        ConfigError, DatasetError: bad input, found before anything is written.
        RunDirBusy: another driver holds the run directory.
        RunAborted: an actor died beyond its restart budget, or Ray would not start;
            the results that finished are on disk and a re-run resumes.
    """
    started = time.perf_counter()
    # Before the run directory exists: bad input leaves nothing behind.
    check_run(config)
    if problems is None:
        source = ProblemSource.of_dataset(config.dataset)
    else:
        source = problems if isinstance(problems, ProblemSource) else ProblemSource.of(problems)
    with hold(config.run.out_dir, f"slmsim run {config.name}"):
        local = runner_models(config, shared_pool=models is not None) if sim_in_runners else {}
        return await _run_locked(config, models, source, progress_label, retry_failed, started, local)


async def _run_locked(
    config: ExperimentConfig,
    models: ModelPool | None,
    source: ProblemSource,
    progress_label: str | None,
    retry_failed: bool,
    started: float,
    local: dict[str, ModelActor],
) -> RunSummary:
    out = prepare_run_dir(config)
    run_id = run_id_of(config)
    writer = ResultsWriter(out, retry_failed=retry_failed)
    todo, reattempted = pending(source, writer)
    log, log_fh = make_logger(out / LOG)
    log.info(
        "run_start",
        run_id=run_id,
        name=config.name,
        orchestrator=config.orchestrator.kind,
        problems=source.count,
        already_done=source.count - todo,
        reattempted=reattempted,
        models_in_runners=sorted(local),
    )
    own_pool = models is None
    pool = models or ModelPool(config.seed, config.store, store_dir_of(config), config.run.actor_restarts)
    bar = Progress(source.count, writer.tally, progress_label or config.name, enabled=config.run.progress)
    aborted: RunAborted | None = None
    try:
        if todo:
            ensure_ray(config.run.address)
            supervisor = Supervisor(config.run.actor_restarts)
            handles = pool.ensure([s for s in config.models if s.name not in local])
            for name, handle in pool.actors():
                supervisor.add(name, handle)
            job_models = {s.name: local[s.name] if s.name in local else handles[s.name] for s in config.models}
            job = OrchestratorJob(config, run_id, job_models, _spawn_tools(config, handles))
            run = config.run
            try:
                check_runner_resources(run.runner_resources, alive_nodes())
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
            runners = [
                spawn_runner(
                    job,
                    run.problems_in_flight,
                    run.problem_timeout_s,
                    run.actor_restarts,
                    run.runner_strategy,
                    dict(run.runner_resources),
                )
                for _ in range(min(run.runners, todo))
            ]
            for n, runner in enumerate(runners):
                supervisor.add(f"runner actor {n}", runner)
            try:
                await drive(unfinished(source, writer), todo, runners, config.run, writer, bar, log, supervisor)
            except RunAborted as exc:
                aborted = exc
                log.info("run_aborted", run_id=run_id, reason=str(exc))
        tally = writer.finalize()
    finally:
        writer.close()
        bar.close()
        if own_pool and pool.handles:
            pool.shutdown()
    summary = tally.summary(
        run_id=run_id,
        name=config.name,
        orchestrator=config.orchestrator.kind,
        dataset=config.dataset.name,
        n_expected=source.count,
    ).model_copy(update={"wall_s": time.perf_counter() - started})
    (out / SUMMARY).write_text(summary.model_dump_json(indent=2) + "\n")
    log.info(
        "run_end",
        run_id=run_id,
        n=summary.n,
        accuracy=summary.accuracy,
        open_failures=summary.open_failures,
        wall_s=summary.wall_s,
    )
    log_fh.close()
    if aborted is not None:
        raise aborted
    return summary


def run_experiment(config: ExperimentConfig, **kwargs: Any) -> RunSummary:
    """Synchronous entry point around ``run_experiment_async``."""
    return asyncio.run(run_experiment_async(config, **kwargs))
