"""A simulated run's completions/s through runner and model actors vs the same orchestrator in one process.

    python -m benchmarks.stack_overhead [--config experiments/configs/demo_synthetic.yaml] [--problems 300]

* **in-process** (the bound): the run's ``OrchestratorJob`` with plain ``ModelActor``
  objects (the same simulator backend) and its MUX judge (in process, as in a runner), all
  in this process, ``runners x problems_in_flight`` problems in flight on one event loop;
* **stack**: ``run_experiment`` of the same config (runner actors, each judging its own
  problems, model actors, results streamed to disk), ``time_scale`` 0 so only the stack's CPU counts.

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
import os
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

from benchmarks.cpu_meter import CpuMeter, SteadyWindow, describe, watch_lines
from experiments.runtime.config_io import load_config
from protocols.config import ExperimentConfig
from protocols.messages import Problem

DEMO = "experiments/configs/demo_synthetic.yaml"


def _config(path: str, problems: int, out: Path, extra: list[str]) -> ExperimentConfig:
    base = load_config(path, [f"dataset.limit={problems}", f"run.out_dir={out}", "run.progress=false", *extra])
    models = tuple(m.model_copy(update={"time_scale": 0.0}) for m in base.models)
    return base.model_copy(update={"models": models})


async def in_process(config: ExperimentConfig, problems: list[Problem], window: SteadyWindow) -> tuple[int, float]:
    """(completions, seconds) for the orchestrator on in-process model objects."""
    from actors.model import ModelActor
    from experiments.runtime.job import OrchestratorJob

    models = {m.name: ModelActor(m, config.seed, config.store, None) for m in config.models}
    job = OrchestratorJob(config, "bench", models)
    gate = asyncio.Semaphore(config.run.runners * config.run.problems_in_flight)
    calls = done = 0

    async def one(i: int) -> None:
        nonlocal calls, done
        async with gate:
            result = await job(problems[i], i)
            calls += result.totals.calls
            done += 1
            window.mark(done)

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(len(problems))))
    return calls, time.perf_counter() - started


def through_stack(config: ExperimentConfig, problems: list[Problem], window: SteadyWindow) -> tuple[int, float, float]:
    """(completions, seconds of the whole run, seconds from the first result to the last)."""
    from experiments.runtime.driver import run_experiment

    stop = threading.Event()
    watcher = watch_lines(config.run.out_dir / "results.jsonl", window, stop)
    started = time.perf_counter()
    try:
        summary = run_experiment(config, problems=problems)
    finally:
        stop.set()
        watcher.join()
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
            window_in = SteadyWindow(cpu_in, len(problems))
            calls_in, wall_in = asyncio.run(in_process(config, problems, window_in))
        ensure_ray()  # retried: a loaded machine can be slow to bring a raylet up
        try:
            with CpuMeter() as cpu_st:
                window_st = SteadyWindow(cpu_st, len(problems))
                calls_st, wall_st, steady_st = through_stack(config, problems, window_st)
        finally:
            ray.shutdown()
    bound, stack, steady = calls_in / wall_in, calls_st / wall_st, calls_st / steady_st
    print(f"in-process: {calls_in} completions in {wall_in:.2f} s = {bound:.0f}/s (bound)")
    print(f"stack:      {calls_st} completions in {wall_st:.2f} s = {stack:.0f}/s (incl. actor start-up)")
    print(f"            steady state {steady_st:.2f} s = {steady:.0f}/s (first to last result)")
    ms_in, ms_st = 1000 * cpu_in.seconds / calls_in, 1000 * cpu_st.seconds / calls_st
    print(f"CPU per completion (all processes, load-independent): in-process {ms_in:.2f} ms, stack {ms_st:.2f} ms")
    print(f"            in process by process: {describe(cpu_in.by_role(), calls_in, 'completion')}")
    print(f"            stack by process: {describe(cpu_st.by_role(), calls_st, 'completion')}")
    per_problem = calls_st / len(problems)
    steady_in, steady_cpu = window_in.cpu_per_problem, window_st.cpu_per_problem
    steady_ratio = steady_in / steady_cpu if steady_in and steady_cpu else 0.0
    if steady_in and steady_cpu:
        print(
            f"CPU per completion, steady state ({window_st.marks[0]}th to {window_st.marks[1]}th result): "
            f"in-process {1000 * steady_in / per_problem:.2f} ms, stack {1000 * steady_cpu / per_problem:.2f} ms"
        )
    print(
        f"RATIO stack/in-process = {stack / bound:.3f} (steady {steady / bound:.3f}; "
        f"CPU per completion {ms_in / ms_st:.3f}, steady {steady_ratio:.3f})  "
        f"({args.problems} problems, {config.orchestrator.kind}, sim, load average {os.getloadavg()[0]:.1f})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
