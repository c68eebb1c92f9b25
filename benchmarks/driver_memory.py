"""Driver and actor memory of a simulated run at growing N, as a ratio against the smallest N.

    python -m benchmarks.driver_memory                         # 10k and 100k problems (a few minutes)
    python -m benchmarks.driver_memory --problems 1000,10000 --orchestrator config

Each N runs in a fresh child process (``ru_maxrss`` is a process's peak): the child runs
N problems through the whole stack (``run_experiment``: runner and model actors, results
streamed to ``results.jsonl``), handing them to the driver as a stream
(``experiments.runtime.source.ProblemSource``, as ``slmsim run`` streams its dataset).
What is measured is the stack's memory, so the run is made as cheap per problem as the stack allows, and nothing else:

* GSM8K train problems (``slm_mux_gsm8k_sim.yaml``), graded by their last number: no
  sympy anywhere. Its first ``--base`` problems are repeated under distinct ids up to N
  (``.../r3`` is repeat 3): the driver, the simulator and the results file see N distinct
  problems with full simulated traces (the simulator's per-problem facts are built anew
  for every id). Each repeat is made as the driver reads it, so only the base is held.
* ``--orchestrator single`` (one sample a problem; ``config`` runs the config's SLM-MUX),
  the simulator at ``time_scale`` 0 (no latency slept), two replicas of each model (both
  cores serve completions), ``--in-flight`` problems per runner.

It reports

* **driver peak RSS** (the child's ``ru_maxrss``), and its RSS once the base is loaded;
* **run growth**: peak minus the RSS after loading, i.e. what running the problems
  costs the driver: flat in N when nothing per problem is kept but the results writer's
  index (a few dozen bytes a problem: ``experiments.runtime.results``);
* **actor peak RSS**: the largest ``VmHWM`` among this run's own Ray worker processes
  (the runner and model actors; found as descendants of the child, so other Ray
  programs on the machine are not counted), sampled every 0.5 s.

The last lines are each figure as a ratio against the first N, measured in the same
invocation. Backend: sim.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.cpu_meter import CpuMeter, ProcessTree, describe
from experiments.runtime.config_io import load_config
from protocols.config import ExperimentConfig
from protocols.messages import Problem

CONFIG = "experiments/configs/slm_mux_gsm8k_sim.yaml"
BASE = 2000  # distinct problems loaded; repeated under new ids up to N
REPLICAS = 2  # per model: both cores serve completions


def rss_mb() -> float:
    """This process's current resident set (``VmRSS``), in MB."""
    return _status_kb(os.getpid(), "VmRSS") / 1024


def _status_kb(pid: int, field: str) -> float:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return float(line.split()[1])
    return 0.0


class ActorPeaks:
    """Samples the peak RSS (``VmHWM``) of this process's Ray actor workers in a thread."""

    def __init__(self) -> None:
        self.peak_kb: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._tree = ProcessTree(os.getpid())

    def _loop(self) -> None:
        while not self._stop.wait(0.5):
            for pid, cmd in self._tree.descendants():
                for actor in ("Runner", "ModelActor"):
                    if f"ray::{actor}" in cmd:
                        self.peak_kb[actor] = max(self.peak_kb.get(actor, 0.0), _status_kb(pid, "VmHWM"))

    def __enter__(self) -> ActorPeaks:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _config(path: str, problems: int, out: Path, orchestrator: str, in_flight: int) -> ExperimentConfig:
    extra = [f"dataset.limit={problems}", f"run.out_dir={out}", "run.progress=false"]
    extra.append(f"run.problems_in_flight={in_flight}")
    if orchestrator == "single":
        extra.append("orchestrator={kind: single, model: " + load_config(path).models[0].name + "}")
    base = load_config(path, extra)
    models = tuple(m.model_copy(update={"time_scale": 0.0, "replicas": REPLICAS}) for m in base.models)
    return base.model_copy(update={"models": models})


def child(path: str, n: int, orchestrator: str, in_flight: int = 64, base_n: int = BASE) -> dict[str, Any]:
    """One stack run of ``n`` problems in this process; returns its memory figures."""
    import ray

    from experiments.runtime.driver import run_experiment_async
    from experiments.runtime.preflight import load_dataset
    from experiments.runtime.source import ProblemSource
    from experiments.runtime.spawn import ensure_ray

    with tempfile.TemporaryDirectory() as tmp:
        config = _config(path, n, Path(tmp) / "run", orchestrator, in_flight)
        started = time.perf_counter()
        base = load_dataset(config.dataset.model_copy(update={"limit": min(n, base_n)}))

        def repeats() -> Iterator[Problem]:
            for i in range(n):
                p = base[i % len(base)]
                yield p.model_copy(update={"id": f"{p.id}/r{i // len(base)}", "answer_format": "gsm8k"})

        problems = ProblemSource(n, repeats)
        loaded_mb = rss_mb()
        load_s = time.perf_counter() - started
        ensure_ray()  # retried: a loaded machine can be slow to bring a raylet up
        try:
            import asyncio

            with ActorPeaks() as peaks, CpuMeter() as cpu:
                started = time.perf_counter()
                summary = asyncio.run(run_experiment_async(config, problems=problems))
                wall = time.perf_counter() - started
        finally:
            ray.shutdown()
        file_mb = (config.run.out_dir / "results.jsonl").stat().st_size / 2**20
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "n": n,
        "results": summary.n,
        "calls": summary.calls,
        "load_s": load_s,
        "run_s": wall,
        "cpu_ms": 1000 * cpu.seconds / max(1, summary.n),
        "load": os.getloadavg()[0],
        "cpu_by": describe(cpu.by_role(), summary.n),
        "file_mb": file_mb,
        "loaded_mb": loaded_mb,
        "peak_mb": peak_mb,
        "growth_mb": peak_mb - loaded_mb,
        "runner_mb": peaks.peak_kb.get("Runner", 0.0) / 1024,
        "model_mb": peaks.peak_kb.get("ModelActor", 0.0) / 1024,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.driver_memory", description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=CONFIG)
    parser.add_argument("--problems", default="10000,100000", help="comma-separated N")
    parser.add_argument("--orchestrator", choices=["config", "single"], default="single")
    parser.add_argument("--in-flight", type=int, default=64, help="problems in flight per runner")
    parser.add_argument("--base", type=int, default=BASE, help="distinct problems, repeated up to N")
    parser.add_argument("--_child", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._child:
        row = child(args.config, args._child, args.orchestrator, args.in_flight, args.base)
        print("RESULT " + json.dumps(row), flush=True)
        return 0
    rows = []
    for n in (int(x) for x in args.problems.split(",")):
        cmd = [sys.executable, "-m", "benchmarks.driver_memory", "--config", args.config]
        cmd += ["--orchestrator", args.orchestrator, f"--in-flight={args.in_flight}", f"--base={args.base}"]
        cmd += [f"--_child={n}"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        found = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
        if proc.returncode != 0 or not found:
            print(f"n={n}: the run failed (exit {proc.returncode}): {proc.stderr[-1500:]}", file=sys.stderr)
            return 1
        row = json.loads(found[0][len("RESULT ") :])
        rows.append(row)
        print(
            f"n={n:>7} results={row['results']} calls={row['calls']} load {row['load_s']:.1f}s run {row['run_s']:.1f}s"
            f" ({row['results'] / row['run_s']:.0f} problems/s, {row['cpu_ms']:.1f} ms CPU a problem, load"
            f" {row['load']:.1f}), results.jsonl {row['file_mb']:.0f} MB"
            f" | driver: after load {row['loaded_mb']:.0f} MB,"
            f" peak {row['peak_mb']:.0f} MB, run growth {row['growth_mb']:.0f} MB | actor peak: runner"
            f" {row['runner_mb']:.0f} MB, model {row['model_mb']:.0f} MB",
            flush=True,
        )
        print(f"         CPU by process: {row['cpu_by']}", flush=True)
    base = rows[0]
    for key, label in [("peak_mb", "driver peak"), ("growth_mb", "driver run growth"), ("runner_mb", "runner actor"),
                       ("model_mb", "model actor")]:  # fmt: skip
        ratios = ", ".join(f"{r['n']}: {r[key] / base[key]:.2f}" if base[key] else "-" for r in rows)
        print(f"RATIO {label} vs n={base['n']}: {ratios}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
