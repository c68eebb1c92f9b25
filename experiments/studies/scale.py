"""``slmsim scale SCALE.yaml``: one experiment over a grid of runners, in-flight limits, replicas and nodes.

Every grid point is a full run (``experiments.runtime.driver``) of the same experiment on
simulated models whose latency is really slept (``time_scale`` real seconds per
simulated second). Nodes are simulated on this machine: for each node count a
``ray.cluster_utils.Cluster`` of that many raylets is started (its own ``RAY_TMPDIR``,
so no other Ray program on the machine can join it), runners are spread over the nodes
and each model has one replica per node (or ``replicas`` when that is a number; at
``replicas: 1`` a model whose ``max_in_flight`` the point cannot reach has no actor, its
runners compute it: ``experiments.runtime.job.in_runner``).

For each point the table gives problems/s (over the whole run, and steady state between
the first and last result), p50/p95 problem latency, and two references:

* the **critical-path bound**: with perfect parallelism a problem takes its longest
  sequential chain of model calls (for one-round orchestrators -- single,
  self-consistency, SLM-MUX, Agent Forest -- the slowest of its parallel calls) times
  ``time_scale``; with P problems in flight the best rate is P / mean(critical path)
  (Little's law), capped by nothing else;
* **linear scaling**: the smallest point's steady rate times P / P_smallest.

It then answers "how many in-flight problems (runners x problems_in_flight) and nodes for
N problems in T minutes" from the measured points (``scale.md``).
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import os
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from experiments.runtime.config_io import config_from_tree, load_model, read_tree
from experiments.runtime.errors import CommandParser, guarded
from protocols.config import ExperimentConfig
from protocols.messages import CallRecord, ProblemResult

ONE_ROUND = {"single", "self_consistency", "slm_mux", "agent_forest"}


class Grid(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    runners: tuple[int, ...] = Field(default=(1, 2, 4, 8), min_length=1)
    problems_in_flight: tuple[int, ...] = Field(default=(16,), min_length=1)
    replicas: tuple[int | Literal["per_node"], ...] = Field(default=("per_node",), min_length=1)
    nodes: tuple[int, ...] = Field(default=(1,), min_length=1)


class Target(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    problems: int = Field(default=100_000, ge=1)
    minutes: float = Field(default=60.0, gt=0)


class ScaleSpec(BaseModel):
    """A scaling experiment: which experiment, how many problems, the latency model, the grid."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    experiment: Path
    """The experiment config (YAML); relative paths are from the scale file's folder."""
    problems: int = Field(default=500, ge=1)
    time_scale: float = Field(default=0.01, gt=0)
    grid: Grid = Field(default_factory=Grid)
    target: Target = Field(default_factory=Target)
    out_dir: Path = Path("runs/scale")
    cpus_per_node: float = Field(default=1.0, gt=0)


def point_config(base: dict[str, Any], spec: ScaleSpec, point: dict[str, Any], address: str) -> ExperimentConfig:
    """The experiment at one grid point (only execution knobs differ from the base)."""
    tree = json.loads(json.dumps(base))
    for model in tree["models"]:
        if model.get("backend", "sim") == "sim":
            model["time_scale"] = spec.time_scale
        model["replicas"] = point["replicas"]
    tree.setdefault("dataset", {})["limit"] = spec.problems
    label = "n{nodes}-r{runners}-f{problems_in_flight}-rep{replicas}".format(**point)
    tree["run"] = {
        **tree.get("run", {}),
        "out_dir": str(spec.out_dir / "points" / label),
        "runners": point["runners"],
        "problems_in_flight": point["problems_in_flight"],
        "address": address,
        "progress": False,
        "runner_strategy": "SPREAD",
    }
    return config_from_tree(tree)


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def critical_path_s(result: ProblemResult, time_scale: float) -> float | None:
    """The real seconds a one-round problem takes with unlimited parallelism: its slowest call."""
    if result.orchestrator not in ONE_ROUND:
        return None
    latencies = [e.reply.latency_s for e in result.trace if isinstance(e, CallRecord) and e.reply.kind == "completion"]
    return max(latencies, default=0.0) * time_scale


def measure(out: Path, time_scale: float, in_flight: int, wall_s: float) -> dict[str, float]:
    """The point's figures from its results and log."""
    results = [ProblemResult.model_validate_json(x) for x in (out / "results.jsonl").read_text().splitlines()]
    done = [
        datetime.fromisoformat(e["timestamp"])
        for e in map(json.loads, (out / "log.jsonl").read_text().splitlines())
        if e["event"] == "problem_done"
    ]
    span = (max(done) - min(done)).total_seconds() if len(done) > 1 else 0.0
    crit = [c for c in (critical_path_s(r, time_scale) for r in results) if c is not None]
    mean_crit = statistics.fmean(crit) if crit else float("nan")
    return {
        "problems": len(results),
        "wall_s": wall_s,
        "problems_per_s": len(results) / wall_s,
        "steady_per_s": (len(done) - 1) / span if span > 0 else float("nan"),
        "p50_s": _quantile([r.wall_s for r in results], 0.5),
        "p95_s": _quantile([r.wall_s for r in results], 0.95),
        "bound_per_s": in_flight / mean_crit if crit else float("nan"),
        "crit_p50_s": _quantile(crit, 0.5),
        "crit_p95_s": _quantile(crit, 0.95),
    }


START_ATTEMPTS = 3
START_PAUSE_S = 10.0


def start_cluster(make: Any, nodes: int, cpus: float, pause_s: float = START_PAUSE_S) -> Any:
    """A simulated cluster of ``nodes`` raylets (``make`` is ``ray.cluster_utils.Cluster``).

    Ray gives a raylet a fixed 30 s to come up, which a loaded machine can miss: a start that
    fails is stopped and tried again after a pause, up to ``START_ATTEMPTS`` times, then the
    last error is raised, named.
    """
    for attempt in range(1, START_ATTEMPTS + 1):
        cluster = make(initialize_head=False)  # the head is its first node: a failed start can be stopped
        try:
            cluster.add_node(num_cpus=cpus, include_dashboard=False)
            for _ in range(nodes - 1):
                cluster.add_node(num_cpus=cpus)
            cluster.wait_for_nodes()
            return cluster
        except Exception as exc:
            with contextlib.suppress(Exception):
                cluster.shutdown()
            if attempt == START_ATTEMPTS:
                raise RuntimeError(
                    f"a simulated cluster of {nodes} node(s) did not start in {START_ATTEMPTS} attempts:"
                    f" {type(exc).__name__}: {exc}"
                ) from exc
            time.sleep(pause_s)
    raise AssertionError("unreachable")


def run_grid(spec: ScaleSpec, base: dict[str, Any]) -> list[dict[str, Any]]:
    """Every grid point, grouped by node count (one simulated cluster per count)."""
    import ray
    from ray.cluster_utils import Cluster

    from experiments.runtime.driver import run_experiment
    from experiments.runtime.preflight import load_dataset

    # Loaded once for the whole grid: generating (and sympy-checking) 2,000 synthetic
    # problems costs more CPU than a grid point's run, and every point uses the same ones.
    first = {"nodes": 1, "runners": 1, "problems_in_flight": 1, "replicas": 1}
    problems = load_dataset(point_config(base, spec, first, "").dataset)
    rows: list[dict[str, Any]] = []
    private = tempfile.mkdtemp(prefix="slmsim-scale-", dir="/tmp")  # short: Ray's socket paths are limited
    saved = os.environ.get("RAY_TMPDIR")
    os.environ["RAY_TMPDIR"] = private  # the cluster's address file goes here, not where others look
    try:
        for nodes in spec.grid.nodes:
            cluster = start_cluster(Cluster, nodes, spec.cpus_per_node)
            try:
                ray.init(address=cluster.address, logging_level=logging.WARNING)
                for runners in spec.grid.runners:
                    for in_flight in spec.grid.problems_in_flight:
                        for replicas in spec.grid.replicas:
                            point = {
                                "nodes": nodes,
                                "runners": runners,
                                "problems_in_flight": in_flight,
                                "replicas": replicas,
                            }
                            config = point_config(base, spec, point, cluster.address)
                            summary = run_experiment(config, problems=problems)
                            figures = measure(
                                config.run.out_dir, spec.time_scale, runners * in_flight, summary.wall_s or 0.0
                            )
                            rows.append({**point, "in_flight": runners * in_flight, **figures})
                            print(_row_line(rows[-1]), flush=True)
            finally:
                ray.shutdown()
                cluster.shutdown()
    finally:
        if saved is None:
            os.environ.pop("RAY_TMPDIR", None)
        else:
            os.environ["RAY_TMPDIR"] = saved
    smallest = min(rows, key=lambda r: (r["in_flight"], r["nodes"]))
    for row in rows:
        row["linear_per_s"] = smallest["steady_per_s"] * row["in_flight"] / smallest["in_flight"]
        row["efficiency"] = row["steady_per_s"] / row["bound_per_s"]
    return rows


COLUMNS = [
    "nodes", "runners", "problems_in_flight", "replicas", "in_flight", "problems", "wall_s", "problems_per_s",
    "steady_per_s", "bound_per_s", "linear_per_s", "efficiency", "p50_s", "p95_s", "crit_p50_s", "crit_p95_s",
]  # fmt: skip


def _fmt(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _row_line(row: dict[str, Any]) -> str:
    return " ".join(f"{k}={_fmt(row[k])}" for k in COLUMNS if k in row)


def answer(rows: list[dict[str, Any]], target: Target) -> str:
    """How much parallelism the target needs, from the measured points."""
    need = target.problems / (60 * target.minutes)
    ok = sorted((r for r in rows if r["steady_per_s"] >= need), key=lambda r: (r["nodes"], r["in_flight"]))
    head = f"{target.problems} problems in {target.minutes:g} minutes need {need:.3g} problems/s. "
    if ok:
        r = ok[0]
        return head + (
            f"Measured: {r['nodes']} node(s), {r['runners']} runner(s) x {r['problems_in_flight']} in flight "
            f"(replicas {r['replicas']}) reach {r['steady_per_s']:.3g}/s."
        )
    best = max(rows, key=lambda r: r["steady_per_s"])
    # Extrapolate along the best point's per-slot rate (it falls with load: a lower bound on what is needed).
    slots = need / (best["steady_per_s"] / best["in_flight"])
    return head + (
        f"No measured point reaches it; the best is {best['steady_per_s']:.3g}/s at {best['in_flight']} in flight on "
        f"{best['nodes']} node(s) (efficiency {best['efficiency']:.2f} of the critical-path bound). At that "
        f"per-slot rate it needs about {slots:.0f} problems in flight, on enough nodes to keep that efficiency."
    )


def write_outputs(rows: list[dict[str, Any]], spec: ScaleSpec, source: str) -> None:
    out = spec.out_dir
    with (out / "scale.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    lines = [
        f"# Scaling: {source}",
        "",
        f"Backend: sim (time_scale {spec.time_scale}), {spec.problems} problems per point, "
        f"simulated nodes on one machine ({spec.cpus_per_node:g} CPU each).",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
        *("| " + " | ".join(_fmt(r[c]) for c in COLUMNS) + " |" for r in rows),
        "",
        answer(rows, spec.target),
        "",
    ]
    (out / "scale.md").write_text("\n".join(lines))
    plot(rows, out / "scale.png")


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for nodes in sorted({r["nodes"] for r in rows}):
        sub = sorted((r for r in rows if r["nodes"] == nodes), key=lambda r: r["in_flight"])
        x = [r["in_flight"] for r in sub]
        ax1.plot(x, [r["steady_per_s"] for r in sub], "o-", label=f"measured, {nodes} node(s)")
        ax2.plot(x, [r["p50_s"] for r in sub], "o-", label=f"p50, {nodes} node(s)")
        ax2.plot(x, [r["p95_s"] for r in sub], "s--", label=f"p95, {nodes} node(s)")
    ordered = sorted(rows, key=lambda r: r["in_flight"])
    x = [r["in_flight"] for r in ordered]
    ax1.plot(x, [r["bound_per_s"] for r in ordered], "k:", label="critical-path bound")
    ax1.plot(x, [r["linear_per_s"] for r in ordered], "k--", alpha=0.5, label="linear scaling")
    ax2.plot(x, [r["crit_p50_s"] for r in ordered], "k:", label="critical path p50")
    ax2.plot(x, [r["crit_p95_s"] for r in ordered], "k-.", alpha=0.6, label="critical path p95")
    for ax, title in ((ax1, "problems/s (steady state)"), (ax2, "problem latency (s)")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("problems in flight (runners x per-runner limit)")
        ax.set_title(title)
        ax.legend(fontsize=7)
    ax1.set_yscale("log")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def scale(path: Path, overrides: list[str]) -> int:
    spec = load_model(ScaleSpec, path, overrides)
    experiment = spec.experiment if spec.experiment.is_absolute() else path.parent / spec.experiment
    if not experiment.exists() and spec.experiment.exists():
        experiment = spec.experiment
    base = read_tree(experiment)
    point_config(base, spec, {"nodes": 1, "runners": 1, "problems_in_flight": 1, "replicas": 1}, "")  # check early
    if min(spec.grid.nodes) < 1:
        raise ValueError(f"grid.nodes: every node count must be >= 1, got {list(spec.grid.nodes)}")
    spec.out_dir.mkdir(parents=True, exist_ok=True)
    rows = run_grid(spec, base)
    write_outputs(rows, spec, str(experiment))
    print(answer(rows, spec.target))
    print(f"wrote {spec.out_dir / 'scale.md'}, scale.csv and scale.png")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = CommandParser(prog="slmsim scale", description=__doc__.split("\n")[0])
    parser.add_argument("config", type=Path, help="the scale YAML (experiment, problems, time_scale, grid, target)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides of the scale YAML, e.g. problems=2000")
    args = parser.parse_args(argv)
    return guarded("scale", lambda: scale(args.config, list(args.overrides)))
