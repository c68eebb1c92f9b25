"""slmsim scale: grid points, the critical-path bound, the answer, the outputs, bad input; one small grid on Ray."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, ClassVar

import pytest

from experiments.runtime.config_io import read_tree
from experiments.studies.scale import (
    START_ATTEMPTS,
    ScaleSpec,
    Target,
    answer,
    critical_path_s,
    main,
    point_config,
    start_cluster,
    write_outputs,
)
from protocols.messages import CallRecord, Completion, ProblemResult
from tests.processes import kill_all, marked_processes

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "experiments" / "configs" / "demo_synthetic.yaml"


def _spec(tmp_path: Path, **kw: Any) -> ScaleSpec:
    return ScaleSpec(experiment=DEMO, out_dir=tmp_path, **kw)


def test_a_grid_point_changes_only_execution_knobs(tmp_path: Path) -> None:
    spec = _spec(tmp_path, problems=50, time_scale=0.2)
    point = {"nodes": 2, "runners": 4, "problems_in_flight": 8, "replicas": "per_node"}
    config = point_config(read_tree(DEMO), spec, point, "127.0.0.1:1")
    assert config.dataset.limit == 50 and config.run.runners == 4 and config.run.problems_in_flight == 8
    assert all(m.time_scale == 0.2 and m.replicas == "per_node" for m in config.models)
    assert config.run.out_dir == tmp_path / "points" / "n2-r4-f8-repper_node"
    from experiments.runtime.driver import run_id_of

    other = point_config(read_tree(DEMO), spec, {**point, "runners": 1, "replicas": 1}, "127.0.0.1:1")
    assert run_id_of(config) == run_id_of(other), "the grid's points are the same experiment"


@pytest.mark.parametrize("name", ["scale_demo", "scale_gsm8k"])
def test_the_shipped_scale_configs_name_a_valid_experiment(name: str) -> None:
    from experiments.runtime.config_io import load_model

    path = REPO / "experiments" / "configs" / f"{name}.yaml"
    spec = load_model(ScaleSpec, path, [])
    point = {"nodes": 1, "runners": 1, "problems_in_flight": 1, "replicas": 1}
    config = point_config(read_tree(path.parent / spec.experiment), spec, point, "")
    assert config.orchestrator.kind == "slm_mux" and config.dataset.limit == spec.problems == 2000
    assert len(spec.grid.runners) >= 4 and min(spec.grid.nodes) == 1 and max(spec.grid.nodes) == 4


def test_the_latency_bound_example_runs_its_slept_models_in_the_runners() -> None:
    from experiments.runtime.config_io import load_model
    from experiments.runtime.job import in_runner

    path = REPO / "experiments" / "configs" / "scale_latency.yaml"
    spec = load_model(ScaleSpec, path, [])
    point = {"nodes": 1, "runners": 2, "problems_in_flight": 32, "replicas": 1}
    config = point_config(read_tree(path.parent / spec.experiment), spec, point, "")
    assert all(m.time_scale == spec.time_scale > 0 and in_runner(m, config) for m in config.models)
    wider = point_config(read_tree(path.parent / spec.experiment), spec, {**point, "problems_in_flight": 256}, "")
    assert not any(in_runner(m, wider) for m in wider.models), "2 x 256 x 3 calls could queue behind 1024"


def _result(latencies: list[float], orchestrator: str = "slm_mux") -> ProblemResult:
    calls = tuple(
        CallRecord(model="m", role="solver", reply=Completion(model="m", text="x", latency_s=s, source="sim"))
        for s in latencies
    )
    return ProblemResult(
        run_id="r", problem_id="p", index=0, benchmark="b", orchestrator=orchestrator, reference="1", trace=calls
    )


def test_the_critical_path_of_a_one_round_problem_is_its_slowest_call() -> None:
    assert critical_path_s(_result([1.0, 3.0, 2.0]), 0.1) == pytest.approx(0.3)
    assert critical_path_s(_result([1.0], "debate"), 0.1) is None, "multi-round: no bound claimed"


def _rows() -> list[dict[str, Any]]:
    rows = []
    for nodes, runners, rate in [(1, 1, 10.0), (1, 2, 18.0), (2, 2, 30.0)]:
        rows.append(
            {
                "nodes": nodes, "runners": runners, "problems_in_flight": 8, "replicas": "per_node",
                "in_flight": 8 * runners, "problems": 100, "wall_s": 100 / rate, "problems_per_s": rate,
                "steady_per_s": rate, "bound_per_s": 16.0 * runners, "linear_per_s": 10.0 * runners,
                "efficiency": rate / (16.0 * runners), "p50_s": 0.6, "p95_s": 1.0, "crit_p50_s": 0.5,
                "crit_p95_s": 0.8,
            }
        )  # fmt: skip
    return rows


def test_the_answer_names_the_smallest_point_that_meets_the_target_or_extrapolates() -> None:
    met = answer(_rows(), Target(problems=3600 * 15, minutes=60))  # 15/s
    assert "need 15 problems/s" in met and "1 node(s), 2 runner(s) x 8" in met
    short = answer(_rows(), Target(problems=3600 * 60, minutes=60))  # 60/s: none does
    assert "No measured point reaches it" in short and "best is 30/s" in short
    assert "about 32 problems in flight" in short  # 60 / (30/16 per slot)


def test_outputs_are_a_csv_a_markdown_table_and_a_plot(tmp_path: Path) -> None:
    write_outputs(_rows(), _spec(tmp_path), "demo")
    with (tmp_path / "scale.csv").open() as fh:
        table = list(csv.DictReader(fh))
    assert [r["steady_per_s"] for r in table] == ["10.0", "18.0", "30.0"]
    md = (tmp_path / "scale.md").read_text()
    assert "Backend: sim" in md and md.count("\n| ") == 4
    assert (tmp_path / "scale.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_scale_config_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "s.yaml"
    bad.write_text(f"experiment: {DEMO}\ngrid: {{runners: [0.5]}}\n")
    assert main([str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("slmsim scale: error:") and "runners" in err[0]
    bad.write_text(f"experiment: {tmp_path / 'missing.yaml'}\n")
    assert main([str(bad)]) == 2
    assert "missing.yaml" in capsys.readouterr().err


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.timeout(1200)  # the command's own 900 s guard below, plus start-up and teardown
def test_scale_runs_a_small_grid_on_simulated_nodes(tmp_path: Path) -> None:
    """End to end in its own process (it starts its own clusters): 2 runner counts x 1-2 nodes."""
    mark = f"SLMSIM_SCALE_TEST={uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env[mark.split("=")[0]] = mark.split("=")[1]
    scale_yaml = tmp_path / "scale.yaml"
    scale_yaml.write_text(
        f"experiment: {DEMO}\nproblems: 12\ntime_scale: 0.02\nout_dir: {tmp_path / 'out'}\n"
        "grid: {runners: [1, 2], problems_in_flight: [4], nodes: [1, 2]}\ntarget: {problems: 100, minutes: 1}\n"
    )
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "experiments.cli", "scale", str(scale_yaml)],
            # A hang guard: the grid took 262 s of the former 300 s at load ~25 (two clusters started).
            cwd=REPO, env=env, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
    finally:
        kill_all([p.pid for p in marked_processes(mark)])
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    with (tmp_path / "out" / "scale.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["nodes"], r["runners"]) for r in rows] == [("1", "1"), ("1", "2"), ("2", "1"), ("2", "2")]
    assert all(r["problems"] == "12" for r in rows)
    assert all(float(r["steady_per_s"]) > 0 and float(r["bound_per_s"]) > 0 for r in rows)
    assert "problems in 1 minutes need" in proc.stdout


class FlakyCluster:
    """Stands in for ``ray.cluster_utils.Cluster``: its first ``failures`` starts miss Ray's deadline."""

    made: ClassVar[list[FlakyCluster]] = []
    failures = 0

    def __init__(self, initialize_head: bool) -> None:
        assert not initialize_head  # the head is added as the first node, so a failed start can be stopped
        self.nodes: list[int] = []
        self.stopped = False
        FlakyCluster.made.append(self)

    def add_node(self, num_cpus: int, **_: object) -> None:
        if len(FlakyCluster.made) <= FlakyCluster.failures:
            raise RuntimeError("The current node timed out during startup.")
        self.nodes.append(num_cpus)

    def wait_for_nodes(self) -> None:
        pass

    def shutdown(self) -> None:
        self.stopped = True


def test_a_cluster_start_that_misses_rays_deadline_is_stopped_and_tried_again() -> None:
    FlakyCluster.made, FlakyCluster.failures = [], 1
    cluster = start_cluster(FlakyCluster, 3, 2, pause_s=0)
    assert cluster.nodes == [2, 2, 2] and not cluster.stopped
    assert len(FlakyCluster.made) == 2 and FlakyCluster.made[0].stopped  # the failed start left nothing running
    FlakyCluster.made, FlakyCluster.failures = [], START_ATTEMPTS
    with pytest.raises(RuntimeError, match="did not start in 3 attempts: RuntimeError: The current node timed out"):
        start_cluster(FlakyCluster, 2, 1, pause_s=0)
    assert len(FlakyCluster.made) == START_ATTEMPTS and all(c.stopped for c in FlakyCluster.made)
