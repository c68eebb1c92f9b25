"""Multi-node runs on a 3-node ``ray.cluster_utils.Cluster``: placement, a killed actor, a killed driver, a lost node.

One ``tests/experiments/cluster_probe.py`` process (own ``RAY_TMPDIR``, so its cluster never
meets the session's ``ray_session`` instance) starts the cluster once and runs the four
scenarios on it one after another, each in its own run directory and reporting only the
actors it created; each test below checks one scenario's report. The node removal comes
last, as it leaves two nodes. Every process the probe started is found by an inherited
marker and stopped whatever happens. The cluster: a head (no ``worker`` resource) and two
workers offering ``worker``; runners ask for ``worker`` (``run.runner_resources``), both
models have ``replicas: per_node``.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.experiments.ray_nodes import run_probe
from tests.processes import kill_all, marked_processes

# The module fixture runs the whole probe inside the first test's setup, which pytest-timeout counts:
# at load 25 the four scenarios needed more than the 480 s the probe had (and pyproject's 600 s).
pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.timeout(1800)]
REPO = Path(__file__).resolve().parents[2]
N = 60  # cluster_probe.N_PROBLEMS
SCENARIOS = ("placement", "kill_remote", "kill_driver", "remove_node")  # the order they run in


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The probe's report of every scenario, from one cluster (module-scoped: one start for four tests)."""
    temp = Path("/tmp") / f"slmsim-cl-{uuid.uuid4().hex[:8]}"  # short: Ray's socket paths have a length limit
    mark = ("SLMSIM_CLUSTER_PROBE", temp.name)
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update({"RAY_TMPDIR": str(temp), mark[0]: mark[1]})

    def clean() -> None:
        kill_all([p.pid for p in marked_processes(f"{mark[0]}={mark[1]}")])
        shutil.rmtree(temp, ignore_errors=True)

    try:  # a cluster that missed Ray's start-up deadline on a busy machine is started afresh (clean)
        return run_probe(",".join(SCENARIOS), tmp_path_factory.mktemp("cluster") / "probe", env, 1200, clean)
    finally:
        clean()


def _answered_once(report: dict[str, Any]) -> None:
    assert (report["n"], report["errors"], report["open"]) == (N, 0, 0), report
    assert len(report["ids"]) == N and len(set(report["ids"])) == N, "every problem answered exactly once"


def test_runners_spread_over_worker_nodes_and_call_their_local_replica(reports: dict[str, Any]) -> None:
    report = reports["placement"]
    _answered_once(report)
    nodes = report["nodes"]
    runners = {a["node"] for a in report["actors"]["Runner"]}
    assert runners == {nodes["w1"], nodes["w2"]}, "SPREAD puts the two runners on the two worker nodes"
    for model in ("L", "G"):
        placed = {node: served for name, node, served in report["served"] if name == model}
        assert set(placed) == set(nodes.values()), f"{model}: one replica per node"
        # The head has no runner: its replicas get no call; each worker's replica serves its runner.
        assert placed[nodes["head"]] == 0
        assert placed[nodes["w1"]] > 0 and placed[nodes["w2"]] > 0
        assert sum(placed.values()) == N * 3, "k=3 samples per problem, each served once"


def test_a_node_removed_mid_run_loses_no_answer(reports: dict[str, Any]) -> None:
    report = reports["remove_node"]
    assert report["fault_after"] is not None and report["fault_after"] < N, "the node went while problems were open"
    assert report["alive_nodes"] == 2
    _answered_once(report)
    lost = report["nodes"]["w2"]
    moved = [a for actors in report["actors"].values() for a in actors if a["restarts"] >= 1]
    assert moved and all(a["node"] != lost for a in moved), "the lost node's actors restarted elsewhere"


def test_an_actor_killed_on_a_remote_node_loses_no_answer(reports: dict[str, Any]) -> None:
    report = reports["kill_remote"]
    killed = report["killed"]
    assert killed is not None and killed["node"] == report["nodes"]["w2"], "a model actor on a worker node was killed"
    assert report["fault_after"] < N
    _answered_once(report)
    assert any(a["restarts"] >= 1 for a in report["actors"]["ModelActor"]), "the killed replica was restarted"


def test_a_driver_killed_mid_run_on_the_cluster_resumes_where_it_stopped(reports: dict[str, Any]) -> None:
    report = reports["kill_driver"]
    assert 0 < report["killed_at"] < N, "the driver died with problems open"
    assert report["rc"] == 0
    assert report["already_done"] >= report["killed_at"], "the re-run starts from what was on disk"
    assert len(report["ids"]) == N and len(set(report["ids"])) == N, "every problem answered exactly once"
