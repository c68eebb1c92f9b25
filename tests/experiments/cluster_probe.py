"""Runs on a 3-node Ray cluster started in this process, each with an optional fault mid-run.

``python -m tests.experiments.cluster_probe SCENARIO[,SCENARIO...] OUT_DIR`` prints one JSON
line: for each scenario, where every actor it created ran, and what its run wrote. Run in
its own process (with its own ``RAY_TMPDIR``) by tests/experiments/test_cluster.py, so the
cluster never meets the test session's Ray instance. The scenarios run one after another
on ONE cluster (starting a 3-node cluster costs more than a run): ``placement`` (no fault),
``kill_remote`` (kill -9 of a model actor on a worker node), ``kill_driver`` (``slmsim run``
killed and re-run), ``remove_node`` (a worker node removed mid-run; it must come last, the
node is gone afterwards). Each scenario reports only the actors it created, so a restart
counted in one scenario never shows in the next. ``external`` (no fault) runs on a cluster of
separate ``ray start`` processes whose GCS address is in ``SLMSIM_PROBE_ADDRESS``
(tests/experiments/test_cluster_ray_start.py).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

N_PROBLEMS = 60
# Node death found in ~2 s instead of Ray's default ~30 s, so the probe stays short.
FAST_HEALTH = {"health_check_initial_delay_ms": 0, "health_check_period_ms": 500, "health_check_failure_threshold": 4}


def probe_config(out: Path, address: str) -> Any:
    from experiments.runtime.config_io import config_from_tree

    model = {"time_scale": 0.02, "replicas": "per_node"}
    return config_from_tree(
        {
            "name": "cluster-probe",
            "dataset": {"name": "synthetic", "limit": N_PROBLEMS},
            "models": [
                {"name": "L", "card": "Llama-3.1-8B-Instruct", **model},
                {"name": "G", "card": "Gemma-2-27B-Instruct", **model},
            ],
            "orchestrator": {"kind": "slm_mux", "models": ["L", "G"], "k": 3},
            "run": {
                "out_dir": str(out),
                "address": address,
                "runners": 2,
                "problems_in_flight": 4,
                "progress": False,
                "runner_resources": {"worker": 0.01},
                "retry_backoff_s": 0.5,
            },
        }
    )


def actor_ids() -> set[str]:
    import ray

    return set(ray._private.state.actors())


def actors_by_class(skip: frozenset[str] = frozenset()) -> dict[str, list[dict[str, Any]]]:
    """Every actor in the GCS table (no dashboard needed) except those in ``skip`` (earlier scenarios')."""
    import ray

    out: dict[str, list[dict[str, Any]]] = {}
    for actor_id, actor in ray._private.state.actors().items():
        if actor_id in skip:
            continue
        out.setdefault(actor["ActorClassName"], []).append(
            {
                "node": actor["Address"]["NodeID"],
                "pid": actor["Pid"],
                "state": actor["State"],
                "restarts": actor["NumRestarts"],
            }
        )
    return out


class Fault(threading.Thread):
    """Once ``after`` results are on disk, inject the scenario's fault on worker node 2."""

    def __init__(self, scenario: str, results: Path, cluster: Any, victim_node: Any, after: int = 12) -> None:
        super().__init__(daemon=True)
        self.scenario, self.results, self.cluster, self.victim_node = scenario, results, cluster, victim_node
        self.after = after
        self.done_at: int | None = None
        self.killed: dict[str, Any] | None = None

    def run(self) -> None:
        # Ends as soon as ``after`` results are on disk: the bound only matters on a stalled run.
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if self.results.exists() and len(self.results.read_bytes().splitlines()) >= self.after:
                break
            time.sleep(0.05)
        self.done_at = len(self.results.read_bytes().splitlines()) if self.results.exists() else 0
        if self.scenario == "remove_node":
            self.cluster.remove_node(self.victim_node, allow_graceful=False)
        elif self.scenario == "kill_remote":
            remote = [
                a
                for a in actors_by_class().get("ModelActor", [])
                if a["node"] == self.victim_node.node_id and a["state"] == "ALIVE"
            ]
            if remote:
                self.killed = remote[0]
                os.kill(int(remote[0]["pid"]), signal.SIGKILL)


def driver_killed_and_resumed(config: Any, out: Path) -> dict[str, Any]:
    """``slmsim run`` in a child process, kill -9 once some results are on disk, run it again."""
    import subprocess

    from experiments.runtime.config_io import dump_config

    path = out.parent / f"{out.name}.yaml"
    path.write_text(dump_config(config))
    results = out / "results.jsonl"
    command = [sys.executable, "-m", "experiments.cli", "run", str(path)]
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Generous: the loop ends at the 12th result, which took 110 s at load 25 (start-up included);
    # a kill at the deadline with nothing on disk fails the scenario ("killed_at" 0).
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and first.poll() is None:
        if results.exists() and len(results.read_bytes().splitlines()) >= 12:
            break
        time.sleep(0.05)
    killed_at = len(results.read_bytes().splitlines()) if results.exists() else 0
    first.kill()
    first.wait()
    second = subprocess.run(command, capture_output=True, text=True, timeout=900)  # a hang guard, not a bound
    events = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    starts = [e for e in events if e["event"] == "run_start"]
    return {"killed_at": killed_at, "rc": second.returncode, "already_done": starts[-1]["already_done"]}


def run_and_report(config: Any, fault: Fault | None = None, before: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Run the probe experiment on the cluster this process joined; where its actors ran, and what was written."""
    import ray

    from experiments.runtime.driver import ModelPool, run_experiment, store_dir_of
    from experiments.runtime.placement import ReplicaSet

    out = config.run.out_dir
    started = time.perf_counter()
    pool = ModelPool(config.seed, config.store, store_dir_of(config), config.run.actor_restarts)
    summary = run_experiment(config, models=pool)
    wall = time.perf_counter() - started
    served = []  # (model, node the replica was placed on, calls it served)
    for name, handle in pool.handles.items():
        assert isinstance(handle, ReplicaSet)
        for node, replica in handle.replicas:
            served.append((name, node, ray.get(replica.stats.remote())["served"]))
    pool.shutdown()
    if fault is not None and fault.is_alive():
        fault.join(5)
    ids = [json.loads(line)["problem_id"] for line in (out / "results.jsonl").read_text().splitlines()]
    return {
        "actors": actors_by_class(before),
        "n": summary.n,
        "errors": summary.errors,
        "open": summary.open_failures,
        "ids": ids,
        "served": served,
        "fault_after": fault.done_at if fault else None,
        "killed": fault.killed if fault else None,
        "alive_nodes": sum(1 for n in ray.nodes() if n["Alive"]),
        "wall_s": round(wall, 2),
    }


def external(out: Path) -> dict[str, Any]:
    """The probe on a cluster started outside this process (``ray start`` head + workers)."""
    import ray

    address = os.environ["SLMSIM_PROBE_ADDRESS"]
    ray.init(address=address, logging_level=logging.WARNING)
    try:
        nodes = {}
        for node in ray.nodes():
            names = [k for k in node["Resources"] if k in ("head", "w1", "w2")]
            if node["Alive"] and names:
                nodes[names[0]] = node["NodeID"]
        return {"nodes": nodes, **run_and_report(probe_config(out, address))}
    finally:
        ray.shutdown()


STARTUP_FAILED = "PROBE_STARTUP_FAILED"
"""Printed when the cluster could not be started (Ray's fixed node start-up deadlines); nothing ran yet."""
SCENARIOS = ("placement", "kill_remote", "kill_driver", "remove_node")


def scenario_report(scenario: str, out: Path, cluster: Any, victim: Any) -> dict[str, Any]:
    """One scenario's run (and fault) on the running cluster, in its own run directory ``out``."""
    before = frozenset(actor_ids())
    config = probe_config(out, cluster.address)
    if scenario == "kill_driver":
        resumed = driver_killed_and_resumed(config, out)
        ids = [json.loads(line)["problem_id"] for line in (out / "results.jsonl").read_text().splitlines()]
        return {"ids": ids, **resumed}
    fault = None
    if scenario != "placement":
        fault = Fault(scenario, out / "results.jsonl", cluster, victim)
        fault.start()
    return run_and_report(config, fault, before)


def main(scenarios: list[str], out: Path) -> dict[str, Any]:
    import ray
    from ray.cluster_utils import Cluster

    unknown = [s for s in scenarios if s not in SCENARIOS]
    assert not unknown and scenarios == sorted(scenarios, key=SCENARIOS.index), f"scenarios: {scenarios}"
    cluster = None
    try:
        try:
            cluster = Cluster(
                initialize_head=True,
                head_node_args={
                    "num_cpus": 1,
                    "resources": {"head": 1},
                    "include_dashboard": False,
                    "_system_config": FAST_HEALTH,
                },
            )
            workers = [cluster.add_node(num_cpus=1, resources={"worker": 1, f"w{i}": 1}) for i in (1, 2)]
            cluster.wait_for_nodes()
            ray.init(address=cluster.address, logging_level=logging.WARNING)
        except Exception:
            print(STARTUP_FAILED, flush=True)  # a missed start-up deadline on a busy machine: run_probe retries
            raise
        assert cluster.head_node is not None
        nodes = {"head": cluster.head_node.node_id, "w1": workers[0].node_id, "w2": workers[1].node_id}
        out.mkdir(parents=True, exist_ok=True)
        reports: dict[str, Any] = {}
        for scenario in scenarios:
            reports[scenario] = {"nodes": nodes, **scenario_report(scenario, out / scenario, cluster, workers[1])}
        return reports
    finally:
        ray.shutdown()
        if cluster is not None:
            cluster.shutdown()


if __name__ == "__main__":
    scenario, out_dir = sys.argv[1], Path(sys.argv[2])
    report = external(out_dir) if scenario == "external" else main(scenario.split(","), out_dir)
    print("PROBE " + json.dumps(report), flush=True)
