"""A run on a cluster of separate ``ray start`` processes (a head and a worker on 127.0.0.1).

The in-process ``ray.cluster_utils.Cluster`` of test_cluster.py shares one Python parent;
here the head and the worker are independent ``ray start`` node processes, each with its
own CPUs and custom resources, joined by the driver through the GCS address, as on a
real cluster. The driver (``tests/experiments/cluster_probe.py external``) runs in its
own process; the nodes are stopped whatever happens.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.experiments.ray_nodes import ray_nodes, run_probe

# Up to 5 node starts (ray_nodes.START_ATTEMPTS) and the probe: more than pyproject's 600 s on a loaded machine.
pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.timeout(1800)]
REPO = Path(__file__).resolve().parents[2]
N = 60  # cluster_probe.N_PROBLEMS


def test_separate_ray_start_nodes_run_the_experiment_with_exactly_n_results(tmp_path: Path) -> None:
    with ray_nodes(1, {"head": 1}, [(1, {"worker": 1, "w1": 1})]) as nodes:
        env = {**nodes.env, "SLMSIM_PROBE_ADDRESS": nodes.address}
        report = run_probe("external", tmp_path / "run", env)
    assert (report["n"], report["errors"], report["open"]) == (N, 0, 0), report
    assert len(report["ids"]) == N and len(set(report["ids"])) == N, "every problem answered exactly once"
    nodes_by_name = report["nodes"]
    assert set(nodes_by_name) == {"head", "w1"} and report["alive_nodes"] == 2
    runners = {a["node"] for a in report["actors"]["Runner"]}
    assert runners == {nodes_by_name["w1"]}, "runners ask for `worker`: only the worker node offers it"
    for model in ("L", "G"):
        placed = {node: served for name, node, served in report["served"] if name == model}
        assert set(placed) == set(nodes_by_name.values()), f"{model}: one replica per node (replicas: per_node)"
        assert placed[nodes_by_name["head"]] == 0, "calls go to the replica on the runners' node"
        assert placed[nodes_by_name["w1"]] == N * 3, "k=3 samples per problem, each served once"
