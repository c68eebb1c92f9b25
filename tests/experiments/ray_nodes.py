"""Separate ``ray start`` node processes on 127.0.0.1 for tests: every port free, own temp dir, torn down by a marker.

``ray stop`` would stop every Ray on the machine (other people's too), so each node is
started with an environment marker all its processes inherit (GCS, raylet, agents,
workers), and teardown kills exactly the processes holding it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

from tests.processes import kill_all, marked_processes

RAY = shutil.which("ray", path=str(Path(sys.executable).parent)) or "ray"
REPO = Path(__file__).resolve().parents[2]


STARTUP_FAILED = "PROBE_STARTUP_FAILED"
"""What the probe prints when its cluster missed one of Ray's fixed start-up deadlines (a busy machine):
``timed out during startup``, ``GCS cannot find the node``, ``Deadline Exceeded`` were all seen at load 30."""


def run_probe(
    scenario: str,
    out_dir: Path,
    env: dict[str, str],
    timeout_s: float = 600,
    clean: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Run ``tests/experiments/cluster_probe.py SCENARIO OUT`` in its own process; its last PROBE report.

    With ``clean`` (which stops what the failed attempt left), a probe whose cluster could not
    be started is run afresh, up to ``START_ATTEMPTS`` times; any other failure fails.
    """
    for attempt in range(START_ATTEMPTS):
        shutil.rmtree(out_dir, ignore_errors=True)
        proc = subprocess.run(
            [sys.executable, "-m", "tests.experiments.cluster_probe", scenario, str(out_dir)],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
        lines = [x for x in proc.stdout.splitlines() if x.startswith("PROBE ")]
        if proc.returncode == 0 and lines:
            return json.loads(lines[-1][len("PROBE ") :])  # type: ignore[no-any-return]
        output = proc.stdout[-2000:] + proc.stderr[-3000:]
        if clean is None or STARTUP_FAILED not in proc.stdout or attempt + 1 == START_ATTEMPTS:
            raise AssertionError(output)
        clean()
    raise AssertionError("unreachable")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Nodes(NamedTuple):
    """A running set of nodes: the GCS address, the environment to join it with, the marker."""

    address: str
    env: dict[str, str]
    mark: str
    temp: Path


def _node_ports() -> list[str]:
    """Every port a node binds, chosen free: the defaults (e.g. the agent's 52365) may be taken."""
    agent, agent_grpc, runtime_env, metrics, manager, objects = (free_port() for _ in range(6))
    low = free_port()  # worker ports: a small range starting at a free port (checked free below)
    return [
        f"--dashboard-agent-listen-port={agent}", f"--dashboard-agent-grpc-port={agent_grpc}",
        f"--runtime-env-agent-port={runtime_env}", f"--metrics-export-port={metrics}",
        f"--node-manager-port={manager}", f"--object-manager-port={objects}",
        f"--min-worker-port={low}", f"--max-worker-port={low + 200}",
    ]  # fmt: skip


START_ATTEMPTS = 5
"""Ray's 30 s wait for a raylet to register is fixed (ray/_private/node.py): at load 25-40 all of 3
attempts missed it once, so a start gets 5, each after a pause that lets the load ease."""
START_PAUSE_S = 10.0


def _start(args: list[str], env: dict[str, str]) -> str | None:
    """``ray start ARGS``; None when it worked, else the tail of its output."""
    proc = subprocess.run([RAY, "start", *args], env=env, capture_output=True, text=True, timeout=180)
    return None if proc.returncode == 0 else proc.stdout[-1500:] + proc.stderr[-1500:]


def _stop(mark: str) -> list[str]:
    """Kill every process holding ``mark``; returns the command lines of any that survived."""
    kill_all([p.pid for p in marked_processes(mark)])
    return [p.cmdline[:80] for p in marked_processes(mark)]


@contextmanager
def ray_nodes(
    head_cpus: int,
    head_resources: dict[str, float],
    workers: list[tuple[int, dict[str, float]]],
) -> Iterator[Nodes]:
    """A head and ``workers`` (CPUs, custom resources), each a separate ``ray start``; stopped in ``finally``."""
    temp = Path("/tmp") / f"slmsim-rn-{uuid.uuid4().hex[:8]}"  # short: Ray's socket paths have a length limit
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["RAY_TMPDIR"] = str(temp)
    env["RAY_AUTH_MODE"] = "disabled"  # a loopback-only test cluster; token auth would need the token shared
    mark = f"SLMSIM_RAY_NODES={temp.name}"
    env["SLMSIM_RAY_NODES"] = temp.name
    try:
        # A raylet must register with the GCS within Ray's fixed 30 s, which a busy machine
        # can miss: then everything of that attempt is stopped and the nodes start afresh.
        for attempt in range(START_ATTEMPTS):
            address, error = _start_all(env, temp, head_cpus, head_resources, workers)
            if error is None:
                break
            assert not _stop(mark), "processes of a failed start survived"
            shutil.rmtree(temp, ignore_errors=True)  # no session of the failed attempt is picked up again
            assert attempt + 1 < START_ATTEMPTS, f"ray start failed {START_ATTEMPTS} times: {error}"
            time.sleep(START_PAUSE_S)
        yield Nodes(address, env, mark, temp)
    finally:
        left = _stop(mark)
        shutil.rmtree(temp, ignore_errors=True)
        assert not left, f"ray node processes survived: {left}"


def _start_all(
    env: dict[str, str],
    temp: Path,
    head_cpus: int,
    head_resources: dict[str, float],
    workers: list[tuple[int, dict[str, float]]],
) -> tuple[str, str | None]:
    """Start the head, then each worker; (GCS address, None) or (address, what failed)."""
    gcs = free_port()
    address = f"127.0.0.1:{gcs}"
    head = ["--head", f"--port={gcs}", "--node-ip-address=127.0.0.1", f"--num-cpus={head_cpus}"]
    head += [f"--resources={json.dumps(head_resources)}", "--disable-usage-stats", f"--temp-dir={temp}"]
    head += [f"--ray-client-server-port={free_port()}", "--include-dashboard=false"]
    error = _start(head + _node_ports(), env)
    for cpus, resources in workers:
        if error is not None:
            break
        worker = [f"--address={address}", "--node-ip-address=127.0.0.1", f"--num-cpus={cpus}"]
        worker += [f"--resources={json.dumps(resources)}", "--disable-usage-stats"]
        error = _start(worker + _node_ports(), env)
    return address, error
