"""A simulated run's completions/s through runner and model actors vs the same orchestrator in one process.

    python -m benchmarks.stack_overhead [--config experiments/configs/demo_synthetic.yaml] [--problems 300]

* **in-process** (the bound): the run's ``OrchestratorJob`` with plain ``ModelActor``
  objects (the same simulator backend) and the in-process MUX judge, all in this
  process, ``runners x problems_in_flight`` problems in flight on one event loop;
* **stack**: ``run_experiment`` of the same config (runner actors, model actors, the judge
  actor, results streamed to disk), ``time_scale`` 0 so only the stack's CPU counts.

Both run in the same invocation on the same problems, loaded once before either clock
starts (generating and sympy-checking synthetic problems is not the stack's cost). The
stack is given twice: over the whole ``run_experiment`` (actor start-up included) and in
steady state (first to last result, from ``log.jsonl``), and as CPU seconds per
completion summed over every process involved (``benchmarks.cpu_meter``: Ray's GCS,
raylet, actors, the grading workers), which other tenants of a shared machine do not
change. The last line is the ratios.
Driver and actor memory at growing N: ``python -m benchmarks.driver_memory``. Backend: sim.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from datetime import datetime
from pathlib import Path

from benchmarks.cpu_meter import CpuMeter
from experiments.runtime.config_io import load_config
from protocols.config import ExperimentConfig
from protocols.messages import Problem

DEMO = "experiments/configs/demo_synthetic.yaml"


def _config(path: str, problems: int, out: Path, extra: list[str]) -> ExperimentConfig:
    base = load_config(path, [f"dataset.limit={problems}", f"run.out_dir={out}", "run.progress=false", *extra])
    models = tuple(m.model_copy(update={"time_scale": 0.0}) for m in base.models)
    return base.model_copy(update={"models": models})


async def in_process(config: ExperimentConfig, problems: list[Problem]) -> tuple[int, float]:
    """(completions, seconds) for the orchestrator on in-process model objects."""
    from actors.model import ModelActor
    from experiments.runtime.job import OrchestratorJob

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


def through_stack(config: ExperimentConfig, problems: list[Problem]) -> tuple[int, float, float]:
    """(completions, seconds of the whole run, seconds from the first result to the last)."""
    from experiments.runtime.driver import run_experiment

    started = time.perf_counter()
    summary = run_experiment(config, problems=problems)
    wall = time.perf_counter() - started
    events = [json.loads(line) for line in (config.run.out_dir / "log.jsonl").read_text().splitlines()]
    done = [datetime.fromisoformat(e["timestamp"]) for e in events if e["event"] == "problem_done"]
    steady = (max(done) - min(done)).total_seconds() * len(done) / max(1, len(done) - 1)
    return summary.calls, wall, steady


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stack_overhead", description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=DEMO)
    parser.add_argument("--problems", type=int, default=300)
    parser.add_argument("--orchestrator", choices=["config", "single"], default="config")
    args = parser.parse_args(argv)
    extra = []
    if args.orchestrator == "single":
        first = load_config(args.config).models[0].name
        extra = ["orchestrator={kind: single, model: " + first + "}"]
    import ray

    from experiments.runtime.preflight import load_dataset
    from experiments.runtime.spawn import ensure_ray

    with tempfile.TemporaryDirectory() as tmp:
        config = _config(args.config, args.problems, Path(tmp) / "run", extra)
        problems = load_dataset(config.dataset)
        with CpuMeter() as cpu_in:
            calls_in, wall_in = asyncio.run(in_process(config, problems))
        ensure_ray()  # retried: a loaded machine can be slow to bring a raylet up
        try:
            with CpuMeter() as cpu_st:
                calls_st, wall_st, steady_st = through_stack(config, problems)
        finally:
            ray.shutdown()
    bound, stack, steady = calls_in / wall_in, calls_st / wall_st, calls_st / steady_st
    print(f"in-process: {calls_in} completions in {wall_in:.2f} s = {bound:.0f}/s (bound)")
    print(f"stack:      {calls_st} completions in {wall_st:.2f} s = {stack:.0f}/s (incl. actor start-up)")
    print(f"            steady state {steady_st:.2f} s = {steady:.0f}/s (first to last result)")
    ms_in, ms_st = 1000 * cpu_in.seconds / calls_in, 1000 * cpu_st.seconds / calls_st
    print(f"CPU per completion (all processes, load-independent): in-process {ms_in:.2f} ms, stack {ms_st:.2f} ms")
    print(
        f"RATIO stack/in-process = {stack / bound:.3f} (steady {steady / bound:.3f}; "
        f"CPU per completion {ms_in / ms_st:.3f})  "
        f"({args.problems} problems, {config.orchestrator.kind}, sim)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
