"""Multi-node runs on a 3-node ``ray.cluster_utils.Cluster``: placement, a lost node, a killed remote actor.

Each test runs ``tests/experiments/cluster_probe.py`` in its own process with its own
``RAY_TMPDIR``, so its cluster never meets the session's ``ray_session`` instance, and
every process it started is found by an inherited marker and stopped whatever happens.
The last test kills the driver (``slmsim run`` against the cluster) and re-runs it.
The cluster: a head (no ``worker`` resource) and two workers offering ``worker``; runners
ask for ``worker`` (``run.runner_resources``), both models have ``replicas: per_node``.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.experiments.ray_nodes import run_probe
from tests.processes import kill_all, marked_processes

pytestmark = [pytest.mark.ray, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
N = 60  # cluster_probe.N_PROBLEMS


@pytest.fixture
def probe(tmp_path: Path) -> Iterator[Any]:
    temp = Path("/tmp") / f"slmsim-cl-{uuid.uuid4().hex[:8]}"  # short: Ray's socket paths have a length limit
    mark = ("SLMSIM_CLUSTER_PROBE", temp.name)

    def run(scenario: str) -> dict[str, Any]:
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        env.update({"RAY_TMPDIR": str(temp), mark[0]: mark[1]})
        return run_probe(scenario, tmp_path / scenario, env)

    try:
        yield run
    finally:
        kill_all([p.pid for p in marked_processes(f"{mark[0]}={mark[1]}")])
        shutil.rmtree(temp, ignore_errors=True)


def _answered_once(report: dict[str, Any]) -> None:
    assert (report["n"], report["errors"], report["open"]) == (N, 0, 0), report
    assert len(report["ids"]) == N and len(set(report["ids"])) == N, "every problem answered exactly once"


def test_runners_spread_over_worker_nodes_and_call_their_local_replica(probe: Any) -> None:
    report = probe("placement")
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


def test_a_node_removed_mid_run_loses_no_answer(probe: Any) -> None:
    report = probe("remove_node")
    assert report["fault_after"] is not None and report["fault_after"] < N, "the node went while problems were open"
    assert report["alive_nodes"] == 2
    _answered_once(report)
    lost = report["nodes"]["w2"]
    moved = [a for actors in report["actors"].values() for a in actors if a["restarts"] >= 1]
    assert moved and all(a["node"] != lost for a in moved), "the lost node's actors restarted elsewhere"


def test_an_actor_killed_on_a_remote_node_loses_no_answer(probe: Any) -> None:
    report = probe("kill_remote")
    killed = report["killed"]
    assert killed is not None and killed["node"] == report["nodes"]["w2"], "a model actor on a worker node was killed"
    assert report["fault_after"] < N
    _answered_once(report)
    assert any(a["restarts"] >= 1 for a in report["actors"]["ModelActor"]), "the killed replica was restarted"


def test_a_driver_killed_mid_run_on_the_cluster_resumes_where_it_stopped(probe: Any) -> None:
    report = probe("kill_driver")
    assert 0 < report["killed_at"] < N, "the driver died with problems open"
    assert report["rc"] == 0
    assert report["already_done"] >= report["killed_at"], "the re-run starts from what was on disk"
    assert len(report["ids"]) == N and len(set(report["ids"])) == N, "every problem answered exactly once"
