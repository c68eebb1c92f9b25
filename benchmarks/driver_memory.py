"""Driver and actor memory of a simulated run at growing N, as a ratio against the smallest N.

    python -m benchmarks.driver_memory                         # 1k, 10k, 100k problems, orchestrator single
    python -m benchmarks.driver_memory --problems 1000,10000 --orchestrator config

Each N runs in a fresh child process (``ru_maxrss`` is a process's peak): the child makes
N problems, then runs them through the whole stack (``run_experiment``: runner
and model actors, results streamed to ``results.jsonl``, ``time_scale`` 0). It reports

The N problems are the config's first 200 (synthetic) problems repeated under distinct
ids (``.../r3`` is repeat 3), graded as ``gsm8k`` (last number) instead of symbolically:
generating and sympy-verifying 100k distinct synthetic problems, or grading 100k answers
symbolically, costs far more CPU than the stack and is not what is measured here (the
accuracy printed is therefore meaningless). The driver and the results file see N
distinct problems with full simulated traces.

* **driver peak RSS** (the child's ``ru_maxrss``), and its RSS once the dataset is loaded:
  the problems themselves are the one per-problem cost the driver keeps (the dataset);
* **run growth**: peak minus the RSS after loading, i.e. what running the problems
  costs the driver beyond the dataset: flat in N when nothing per problem is kept;
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
from pathlib import Path

from experiments.runtime.config_io import load_config
from protocols.config import ExperimentConfig

DEMO = "experiments/configs/demo_synthetic.yaml"
BASE = 200  # distinct problems generated; repeated under new ids up to N


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


def descendants(root: int) -> list[tuple[int, str]]:
    """(pid, command line) of every process below ``root``, from ``/proc``."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent:
                frontier.append(pid)
                try:
                    cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                except OSError:
                    cmd = ""
                found.append((pid, cmd))
    return found


class ActorPeaks:
    """Samples the peak RSS (``VmHWM``) of this process's Ray actor workers in a thread."""

    def __init__(self) -> None:
        self.peak_kb: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(0.5):
            for pid, cmd in descendants(os.getpid()):
                for actor in ("Runner", "ModelActor"):
                    if f"ray::{actor}" in cmd:
                        self.peak_kb[actor] = max(self.peak_kb.get(actor, 0.0), _status_kb(pid, "VmHWM"))

    def __enter__(self) -> ActorPeaks:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _config(path: str, problems: int, out: Path, orchestrator: str) -> ExperimentConfig:
    extra = [f"dataset.limit={problems}", f"run.out_dir={out}", "run.progress=false"]
    if orchestrator == "single":
        extra.append("orchestrator={kind: single, model: " + load_config(path).models[0].name + "}")
    base = load_config(path, extra)
    models = tuple(m.model_copy(update={"time_scale": 0.0}) for m in base.models)
    return base.model_copy(update={"models": models})


def child(path: str, n: int, orchestrator: str) -> dict[str, float]:
    """One stack run of ``n`` problems in this process; returns its memory figures."""
    import ray

    from experiments.runtime.driver import run_experiment_async
    from experiments.runtime.preflight import load_dataset
    from experiments.runtime.spawn import ensure_ray

    with tempfile.TemporaryDirectory() as tmp:
        config = _config(path, n, Path(tmp) / "run", orchestrator)
        started = time.perf_counter()
        base = load_dataset(config.dataset.model_copy(update={"limit": min(n, BASE)}))
        problems = [
            p.model_copy(update={"id": f"{p.id}/r{i // len(base)}", "answer_format": "gsm8k"})
            for i, p in enumerate(base * -(-n // len(base)))
        ][:n]
        loaded_mb = rss_mb()
        load_s = time.perf_counter() - started
        ensure_ray()  # retried: a loaded machine can be slow to bring a raylet up
        try:
            import asyncio

            with ActorPeaks() as peaks:
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
        "file_mb": file_mb,
        "loaded_mb": loaded_mb,
        "peak_mb": peak_mb,
        "growth_mb": peak_mb - loaded_mb,
        "runner_mb": peaks.peak_kb.get("Runner", 0.0) / 1024,
        "model_mb": peaks.peak_kb.get("ModelActor", 0.0) / 1024,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.driver_memory", description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=DEMO)
    parser.add_argument("--problems", default="1000,10000,100000", help="comma-separated N")
    parser.add_argument("--orchestrator", choices=["config", "single"], default="single")
    parser.add_argument("--_child", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._child:
        print("RESULT " + json.dumps(child(args.config, args._child, args.orchestrator)), flush=True)
        return 0
    rows = []
    for n in (int(x) for x in args.problems.split(",")):
        cmd = [sys.executable, "-m", "benchmarks.driver_memory", "--config", args.config]
        cmd += ["--orchestrator", args.orchestrator, f"--_child={n}"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        found = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
        if proc.returncode != 0 or not found:
            print(f"n={n}: the run failed (exit {proc.returncode}): {proc.stderr[-1500:]}", file=sys.stderr)
            return 1
        row = json.loads(found[0][len("RESULT ") :])
        rows.append(row)
        print(
            f"n={n:>7} results={row['results']} calls={row['calls']} load {row['load_s']:.1f}s run {row['run_s']:.1f}s"
            f" ({row['results'] / row['run_s']:.0f} problems/s), results.jsonl {row['file_mb']:.0f} MB"
            f" | driver: after load {row['loaded_mb']:.0f} MB,"
            f" peak {row['peak_mb']:.0f} MB, run growth {row['growth_mb']:.0f} MB | actor peak: runner"
            f" {row['runner_mb']:.0f} MB, model {row['model_mb']:.0f} MB",
            flush=True,
        )
    base = rows[0]
    for key, label in [("peak_mb", "driver peak"), ("growth_mb", "driver run growth"), ("runner_mb", "runner actor"),
                       ("model_mb", "model actor")]:  # fmt: skip
        ratios = ", ".join(f"{r['n']}: {r[key] / base[key]:.2f}" if base[key] else "-" for r in rows)
        print(f"RATIO {label} vs n={base['n']}: {ratios}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
