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


def through_stack(
    config: ExperimentConfig, problems: list[Problem], window: SteadyWindow, sim_in_runners: bool = True
) -> tuple[int, float, float]:
    """(completions, seconds of the whole run, seconds from the first result to the last)."""
    from experiments.runtime.driver import run_experiment

    stop = threading.Event()
    watcher = watch_lines(config.run.out_dir / "results.jsonl", window, stop)
    started = time.perf_counter()
    try:
        summary = run_experiment(config, problems=problems, sim_in_runners=sim_in_runners)
    finally:
        stop.set()
        watcher.join()
    wall = time.perf_counter() - started
    events = [json.loads(line) for line in (config.run.out_dir / "log.jsonl").read_text().splitlines()]
    done = [datetime.fromisoformat(e["timestamp"]) for e in events if e["event"] == "problem_done"]
    steady = (max(done) - min(done)).total_seconds() * len(done) / max(1, len(done) - 1)
    return summary.calls, wall, steady


class Arm:
    """One measured arm: its completions, wall seconds (whole, steady) and CPU meter."""

    def __init__(self, name: str, calls: int, wall: float, steady: float, cpu: CpuMeter, window: SteadyWindow) -> None:
        self.name, self.calls, self.wall, self.steady, self.cpu, self.window = name, calls, wall, steady, cpu, window

    @property
    def ms(self) -> float:
        return 1000 * self.cpu.seconds / self.calls

    def steady_ms(self, per_problem: float) -> float:
        return 1000 * self.window.cpu_per_problem / per_problem if self.window.cpu_per_problem else 0.0


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name)


def measure_stack(config: ExperimentConfig, problems: list[Problem], name: str, sim_in_runners: bool) -> Arm:
    run = config.model_copy(update={"run": config.run.model_copy(update={"out_dir": config.run.out_dir / slug(name)})})
    with CpuMeter() as cpu:
        window = SteadyWindow(cpu, len(problems))
        calls, wall, steady = through_stack(run, problems, window, sim_in_runners)
    return Arm(name, calls, wall, steady, cpu, window)


def report(bound: Arm, stack: Arm, n: int, kind: str) -> None:
    rate_in, rate, steady = bound.calls / bound.wall, stack.calls / stack.wall, stack.calls / stack.steady
    print(f"{stack.name}: {stack.calls} completions in {stack.wall:.2f} s = {rate:.0f}/s (incl. actor start-up)")
    print(f"            steady state {stack.steady:.2f} s = {steady:.0f}/s (first to last result)")
    print(f"            CPU per completion {stack.ms:.2f} ms (in process {bound.ms:.2f} ms)")
    print(f"            by process: {describe(stack.cpu.by_role(), stack.calls, 'completion')}")
    per_problem = stack.calls / n
    steady_in, steady_st = bound.steady_ms(per_problem), stack.steady_ms(per_problem)
    if steady_in and steady_st:
        print(
            f"            CPU per completion, steady state ({stack.window.marks[0]}th to {stack.window.marks[1]}th "
            f"result): in-process {steady_in:.2f} ms, stack {steady_st:.2f} ms"
        )
    steady_ratio = steady_in / steady_st if steady_in and steady_st else 0.0
    print(
        f"RATIO {stack.name}/in-process = {rate / rate_in:.3f} (steady {steady / rate_in:.3f}; "
        f"CPU per completion {bound.ms / stack.ms:.3f}, steady {steady_ratio:.3f})  "
        f"({n} problems, {kind}, sim, load average {os.getloadavg()[0]:.1f})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stack_overhead", description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=DEMO)
    parser.add_argument("--problems", type=int, default=300)
    parser.add_argument("--orchestrator", choices=["config", "single"], default="config")
    parser.add_argument(
        "--model-actors",
        action="store_true",
        help="also run the stack with every model behind its actor (the path before sim models ran in runners)",
    )
    parser.add_argument("--repeats", type=int, default=1, help="rounds of the stack arms, in alternating order")
    args = parser.parse_args(argv)
    extra = []
    if args.orchestrator == "single":
        first = load_config(args.config).models[0].name
        extra = ["orchestrator={kind: single, model: " + first + "}"]
    import ray

    from experiments.runtime.preflight import load_dataset
    from experiments.runtime.spawn import ensure_ray

    arms = [("stack", True)] + ([("stack, model actors", False)] if args.model_actors else [])
    with tempfile.TemporaryDirectory() as tmp:
        config = _config(args.config, args.problems, Path(tmp) / "run", extra)
        problems = load_dataset(config.dataset)
        # Once, first: a second in-process run in this process would find the simulator's
        # and the grader's caches warm (each stack run gets fresh actor processes).
        with CpuMeter() as cpu_in:
            window_in = SteadyWindow(cpu_in, len(problems))
            calls_in, wall_in = asyncio.run(in_process(config, problems, window_in))
        bound = Arm("in-process", calls_in, wall_in, wall_in, cpu_in, window_in)
        print(f"in-process: {calls_in} completions in {wall_in:.2f} s = {calls_in / wall_in:.0f}/s (bound)")
        print(f"            CPU per completion {bound.ms:.2f} ms")
        print(f"            by process: {describe(cpu_in.by_role(), calls_in, 'completion')}")
        ensure_ray()  # retried: a loaded machine can be slow to bring a raylet up
        try:
            for repeat in range(args.repeats):
                for name, in_runners in arms if repeat % 2 == 0 else arms[::-1]:
                    stack = measure_stack(config, problems, f"{name} #{repeat + 1}", in_runners)
                    report(bound, stack, len(problems), config.orchestrator.kind)
        finally:
            ray.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
