"""A simulated run's completions/s through runner and model actors vs the same orchestrator in one process.

    python -m benchmarks.stack_overhead [--config experiments/configs/demo_synthetic.yaml] [--problems 300]
    python -m benchmarks.stack_overhead --memory 2000,10000 --orchestrator single

* **in-process** (the bound): the run's ``OrchestratorJob`` with plain ``ModelActor``
  objects (the same simulator backend) and the in-process MUX judge, all in this
  process, ``runners x problems_in_flight`` problems in flight on one event loop;
* **stack**: ``run_experiment`` of the same config (runner actors, model actors, the judge
  actor, results streamed to disk), ``time_scale`` 0 so only the stack's CPU counts.

Both run in the same invocation on the same problems; the last line is the ratio.
``--memory`` runs the stack at each N and prints the driver's peak RSS (``ru_maxrss``) to
show how driver memory grows with N. Backend: sim.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from experiments.runtime.config_io import load_config
from protocols.config import ExperimentConfig

DEMO = "experiments/configs/demo_synthetic.yaml"


def _config(path: str, problems: int, out: Path, extra: list[str]) -> ExperimentConfig:
    base = load_config(path, [f"dataset.limit={problems}", f"run.out_dir={out}", "run.progress=false", *extra])
    models = tuple(m.model_copy(update={"time_scale": 0.0}) for m in base.models)
    return base.model_copy(update={"models": models})


async def in_process(config: ExperimentConfig) -> tuple[int, float]:
    """(completions, seconds) for the orchestrator on in-process model objects."""
    from actors.model import ModelActor
    from experiments.runtime.job import OrchestratorJob
    from experiments.runtime.preflight import load_dataset

    problems = load_dataset(config.dataset)
    models = {m.name: ModelActor(m, config.seed, config.store, None) for m in config.models}
    job = OrchestratorJob(config, "bench", models)
    gate = asyncio.Semaphore(config.run.runners * config.run.problems_in_flight)
    calls = 0

    async def one(i: int) -> None:
        nonlocal calls
        async with gate:
            result = await job(problems[i], i)
            calls += result.totals.calls

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(len(problems))))
    return calls, time.perf_counter() - started


def through_stack(config: ExperimentConfig) -> tuple[int, float]:
    from experiments.runtime.driver import run_experiment

    started = time.perf_counter()
    summary = run_experiment(config)
    wall = time.perf_counter() - started
    return summary.calls, wall


def memory_point(path: str, n: int, extra: list[str]) -> None:
    """One stack run of ``n`` problems in this process; prints its peak RSS (run as a child)."""
    import ray

    with tempfile.TemporaryDirectory() as tmp:
        config = _config(path, n, Path(tmp) / "run", extra)
        ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
        try:
            calls, wall = through_stack(config)
        finally:
            ray.shutdown()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"MEMORY n={n} calls={calls} wall_s={wall:.1f} driver_peak_rss_mb={rss_mb:.0f}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stack_overhead", description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=DEMO)
    parser.add_argument("--problems", type=int, default=300)
    parser.add_argument("--orchestrator", choices=["config", "single"], default="config")
    parser.add_argument("--memory", default="", help="comma-separated N: driver peak RSS of a stack run at each N")
    parser.add_argument("--_memory-child", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    extra = []
    if args.orchestrator == "single":
        first = load_config(args.config).models[0].name
        extra = ["orchestrator={kind: single, model: " + first + "}"]
    if args._memory_child:
        memory_point(args.config, args._memory_child, extra)
        return 0
    if args.memory:
        for n in (int(x) for x in args.memory.split(",")):
            cmd = [sys.executable, "-m", "benchmarks.stack_overhead", "--config", args.config]
            cmd += ["--orchestrator", args.orchestrator, f"--_memory-child={n}"]
            subprocess.run(cmd, check=True)  # a fresh process per N: ru_maxrss is a process's peak
        return 0
    import ray

    with tempfile.TemporaryDirectory() as tmp:
        config = _config(args.config, args.problems, Path(tmp) / "run", extra)
        calls_in, wall_in = asyncio.run(in_process(config))
        ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
        try:
            calls_st, wall_st = through_stack(config)
        finally:
            ray.shutdown()
    bound, stack = calls_in / wall_in, calls_st / wall_st
    print(f"in-process: {calls_in} completions in {wall_in:.2f} s = {bound:.0f}/s (bound)")
    print(f"stack:      {calls_st} completions in {wall_st:.2f} s = {stack:.0f}/s (incl. actor start-up)")
    print(f"RATIO stack/in-process = {stack / bound:.3f}  ({args.problems} problems, {config.orchestrator.kind}, sim)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
