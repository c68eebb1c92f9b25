"""`ray job submit` against a real local head node runs the same experiment and leaves the run directory."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.processes import kill_all, marked_processes

pytestmark = [pytest.mark.ray, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
CONFIG = "experiments/configs/demo_synthetic.yaml"
START_ATTEMPTS = 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def head_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """A `ray start --head` node in its own temp dir, so no other test's Ray can find it."""
    ray_bin = shutil.which("ray", path=str(Path(sys.executable).parent)) or "ray"
    temp = Path("/tmp") / f"slmsim-rayjob-{os.getpid()}"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["RAY_TMPDIR"] = str(temp)
    # A loopback-only test cluster; token auth would need the token shared with the client.
    env["RAY_AUTH_MODE"] = "disabled"
    # Every process of this head node inherits the marker, so all of them (GCS, raylet,
    # dashboard, client server, workers) can be found and stopped, whatever fails below.
    mark = f"SLMSIM_RAY_HEAD={temp.name}-{uuid.uuid4().hex[:8]}"
    env[mark.split("=")[0]] = mark.split("=", 1)[1]
    try:
        # A busy machine can miss one of Ray's fixed start-up deadlines, and a port picked free
        # here can be taken before the head binds it: that attempt is stopped and the head started
        # afresh on new ports (as tests/experiments/ray_nodes.py does for its nodes).
        for attempt in range(START_ATTEMPTS):
            # Every port explicit: the defaults (e.g. the agent's 52365) may be taken by another Ray here.
            gcs, dash, agent, agent_grpc, runtime_env, metrics, client = (_free_port() for _ in range(7))
            start = subprocess.run(
                [
                    ray_bin, "start", "--head", f"--port={gcs}", f"--dashboard-port={dash}",
                    "--dashboard-host=127.0.0.1", "--num-cpus=2", "--include-dashboard=true",
                    "--disable-usage-stats", f"--temp-dir={temp}",
                    f"--dashboard-agent-listen-port={agent}", f"--dashboard-agent-grpc-port={agent_grpc}",
                    f"--runtime-env-agent-port={runtime_env}", f"--metrics-export-port={metrics}",
                    f"--ray-client-server-port={client}",
                ],
                env=env, capture_output=True, text=True, timeout=180,
            )  # fmt: skip
            if start.returncode == 0:
                break
            kill_all([p.pid for p in marked_processes(mark)])
            shutil.rmtree(temp, ignore_errors=True)  # no session of the failed attempt is picked up again
            assert attempt + 1 < START_ATTEMPTS, start.stdout[-2000:] + start.stderr[-2000:]
        yield f"http://127.0.0.1:{dash}", env
    finally:
        kill_all([p.pid for p in marked_processes(mark)])
        left = marked_processes(mark)
        shutil.rmtree(temp, ignore_errors=True)
        assert not left, f"head node processes survived: {[p.cmdline[:80] for p in left]}"


def test_ray_job_submit_runs_the_experiment(head_node: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    address, env = head_node
    ray_bin = shutil.which("ray", path=str(Path(sys.executable).parent)) or "ray"
    out = tmp_path / "job-run"
    command = [
        ray_bin, "job", "submit", f"--address={address}", "--working-dir", ".",
        "--", sys.executable, "-m", "experiments.cli", "run", CONFIG,
        f"run.out_dir={out}", "dataset.limit=30", "run.progress=false",
    ]  # fmt: skip
    # The head's dashboard agent comes up a little after `ray start` returns; until it
    # does, submission answers "No available agent". Retry only that, for a bounded time.
    deadline = time.monotonic() + 180
    while True:
        proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=400)
        if "No available agent" not in proc.stderr or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "succeeded" in proc.stdout.lower()
    for name in ("config.yaml", "results.jsonl", "summary.json", "log.jsonl"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n"] == 30 and summary["sources"].get("sim", 0) > 0
    assert len((out / "results.jsonl").read_text().splitlines()) == 30
