"""Fault probes on Ray, on loopback: a server outage, killed actors, resume that recomputes nothing.

Each probe drives the real driver against a real HTTP server (``FakeOpenAI``) or the
simulator, injects the fault, and checks the acceptance of issue #16: every problem
answered exactly once, none computed twice, no error left. Outages are seconds here;
the 60 s / 400-problem version is ``benchmarks/fault_probes.py``.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from experiments.cli import main
from experiments.runtime.config_io import config_from_tree, dump_config
from experiments.runtime.driver import run_experiment
from protocols.config import ExperimentConfig
from protocols.messages import ProblemResult
from tests.experiments.fake_openai import FakeOpenAI

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def live_config(out: Path, url: str, n: int, **run: Any) -> ExperimentConfig:
    # No probe needs the client timeout to fire (an outage refuses or drops connections at once), and
    # the server counts a completion even when the client has given up on it: a reply that outlasted
    # a short timeout on a loaded machine would be computed twice and fail "answered once" (2 s was
    # 20x a 0.1 s reply, but the server shares this process's GIL with the driver).
    model = {"name": "live", "backend": "openai", "base_url": url, "model_id": "m", "timeout_s": 30, "max_retries": 1}
    return config_from_tree(
        {
            "name": "probe",
            "dataset": {"name": "synthetic", "limit": n},
            "models": [model],
            "orchestrator": {"kind": "single", "model": "live"},
            "run": {
                "out_dir": str(out),
                "runners": 1,
                "problems_in_flight": 8,
                "progress": False,
                "problem_retries": 3,
                "retry_backoff_s": 1.0,
                **run,
            },
        }
    )


def _results(out: Path) -> list[ProblemResult]:
    return [ProblemResult.model_validate_json(x) for x in (out / "results.jsonl").read_text().splitlines()]


def _events(out: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]


def _last_run(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    starts = [i for i, e in enumerate(events) if e["event"] == "run_start"]
    return events[starts[-1] :]


def _write(config: ExperimentConfig, path: Path) -> Path:
    path.write_text(dump_config(config))
    return path


def test_outage_mid_run_ends_with_every_problem_answered_once(ray_session: None, tmp_path: Path) -> None:
    out = tmp_path / "run"
    with FakeOpenAI(latency_s=0.1) as server:
        config = live_config(out, server.base_url, 60)
        server.go_down_after(requests=20, seconds=2.5)
        summary = run_experiment(config)
        reruns = 0
        if summary.open_failures:  # the acceptance allows one re-run
            summary = run_experiment(config)
            reruns = 1
    assert server.outages == 1
    retries = [e for e in _events(out) if e["event"] == "problem_retry"]
    assert retries and {e["error"] for e in retries} <= {"connection", "timeout"}, "the outage must have hit"
    assert (summary.n, summary.errors, summary.open_failures) == (60, 0, 0), (summary, reruns)
    ids = [r.problem_id for r in _results(out)]
    assert len(ids) == 60 and len(set(ids)) == 60
    assert len(server.completions) == 60 and set(server.completions.values()) == {1}, "no problem answered twice"


def test_open_failures_exit_1_and_a_rerun_retries_exactly_those(
    ray_session: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    with FakeOpenAI(latency_s=0.0) as server:
        config = live_config(out, server.base_url, 12, problem_retries=1, retry_backoff_s=0.1)
        path = _write(config, tmp_path / "c.yaml")
        server.go_down(None)  # down for the whole first run
        assert main(["run", str(path)]) == 1
        captured = capsys.readouterr()
        assert "OPEN: 12 problems ended with a transient failure" in captured.out
        err = captured.err.strip().splitlines()
        assert err[-1].startswith("slmsim run: error: 12 of 12 problems still have a transient failure"), err[-1]
        summary = json.loads((out / "summary.json").read_text())
        assert summary["open_failures"] == 12 and summary["error_kinds"] == {"connection": 12}
        server.come_back()
        assert main(["run", str(path)]) == 0
        assert len(server.completions) == 12 and set(server.completions.values()) == {1}
        start = _last_run(_events(out))[0]
        assert (start["already_done"], start["reattempted"]) == (0, 12)
        # Permanent failures (HTTP 400) are final: a re-run leaves them; --retry-failed re-attempts them.
        server.status = 400
        out2 = tmp_path / "run2"
        path2 = _write(live_config(out2, server.base_url, 5), tmp_path / "c2.yaml")
        assert main(["run", str(path2)]) == 0  # a permanent failure is a result, not an open one
        assert json.loads((out2 / "summary.json").read_text())["error_kinds"] == {"client": 5}
        server.status = 200
        before = server.requests
        assert main(["run", str(path2)]) == 0
        assert server.requests == before, "a plain re-run must not retry permanent failures"
        assert main(["run", str(path2), "--retry-failed"]) == 0
        assert json.loads((out2 / "summary.json").read_text())["errors"] == 0
        assert server.requests == before + 5


def test_a_backend_that_stays_down_stops_the_run_instead_of_retrying_every_problem(
    ray_session: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    with FakeOpenAI(latency_s=0.0) as server:
        config = live_config(out, server.base_url, 40, problem_retries=1, retry_backoff_s=0.05, problems_in_flight=4)
        path = _write(config, tmp_path / "c.yaml")
        server.go_down(None)
        assert main(["run", str(path)]) == 1
        err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("slmsim")]
        assert len(err) == 1 and "16 problems in a row still failed" in err[0], err
        assert "the backend looks down" in err[0]
        recorded = _results(out)
        assert 16 <= len(recorded) < 40, "stopped early, and the open results are kept"
        server.come_back()
        assert main(["run", str(path)]) == 0
        assert len(_results(out)) == 40 and len(server.completions) == 40


def test_resume_recomputes_only_missing_problems_and_a_finished_run_makes_no_call(
    ray_session: None, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    with FakeOpenAI(latency_s=0.0) as server:
        config = live_config(out, server.base_url, 30)
        run_experiment(config)
        assert server.requests == 30
        # A driver killed after 18 results: keep those lines, drop the summary.
        lines = (out / "results.jsonl").read_text().splitlines(keepends=True)
        (out / "results.jsonl").write_text("".join(lines[:18]))
        (out / "summary.json").unlink()
        summary = run_experiment(config)
        assert summary.n == 30
        assert server.requests == 30 + 12, "exactly the 12 missing problems are computed again"
        # 18 prompts asked once, 12 twice, and all 30 results on disk: the recomputed ones are the missing ones.
        assert sorted(server.completions.values()) == [1] * 18 + [2] * 12, "no finished problem is recomputed"
        run = _last_run(_events(out))
        assert run[0]["already_done"] == 18 and sum(e["event"] == "problem_done" for e in run) == 12
        before = (out / "results.jsonl").read_bytes()
        again = run_experiment(config)
        assert server.requests == 42, "resuming a finished run makes no call"
        run = _last_run(_events(out))
        assert run[0]["already_done"] == 30 and not any(e["event"] == "problem_done" for e in run)
        assert again.n == 30 and (out / "results.jsonl").read_bytes() == before


# --- killed actors ------------------------------------------------------------------


def _alive(class_name: str) -> list[dict[str, Any]]:
    import ray

    actors = ray._private.state.actors().values()  # GCS table: works without the dashboard
    return sorted(
        (a for a in actors if a["ActorClassName"] == class_name and a["State"] == "ALIVE"),
        key=lambda a: a["StartTime"],
    )


class Killer(threading.Thread):
    """Once ``after`` results are on disk, kill -9 the newest live actor of a class; wait for its restart."""

    def __init__(self, results: Path, class_name: str, after: int, wait_restart: bool = True) -> None:
        super().__init__(daemon=True)
        self.results, self.class_name, self.after = results, class_name, after
        self.wait_restart = wait_restart
        self.killed_pid: int | None = None
        self.restarted = False

    def run(self) -> None:
        # Each wait ends at its event; the bounds only stop a stalled run. One 120 s budget for both
        # was spent before the 8th result at load ~20 (162 s: the actors' start-up), so the actor was
        # killed early and its restart never looked for: "ModelActor was not restarted".
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if self.results.exists() and len(self.results.read_bytes().splitlines()) >= self.after:
                break
            time.sleep(0.05)
        victims = _alive(self.class_name)
        if not victims:
            return
        victim = victims[-1]
        self.killed_pid = int(victim["Pid"])
        os.kill(self.killed_pid, signal.SIGKILL)
        deadline = time.monotonic() + 300
        while self.wait_restart and time.monotonic() < deadline and not self.restarted:
            for actor in _alive(self.class_name):
                if actor["ActorID"] == victim["ActorID"] and actor["NumRestarts"] >= 1:
                    self.restarted = True
            time.sleep(0.1)


def mux_config(out: Path, n: int, **run: Any) -> ExperimentConfig:
    return config_from_tree(
        {
            "name": "kill-probe",
            "dataset": {"name": "synthetic", "limit": n},
            "models": [
                # A cap this run can reach (4 problems x k=3 = 12 calls), so the models keep their
                # actors (job.in_runner), which these tests kill.
                {"name": "L", "card": "Llama-3.1-8B-Instruct", "time_scale": 0.05, "max_in_flight": 8},
                {"name": "G", "card": "Gemma-2-27B-Instruct", "time_scale": 0.05, "max_in_flight": 8},
            ],
            "orchestrator": {"kind": "slm_mux", "models": ["L", "G"], "k": 3},
            "run": {"out_dir": str(out), "runners": 1, "problems_in_flight": 4, "progress": False, **run},
        }
    )


@pytest.mark.parametrize("victim", ["ModelActor", "Runner"])
def test_kill_9_of_an_actor_mid_run_costs_no_answer(ray_session: None, tmp_path: Path, victim: str) -> None:
    out = tmp_path / "run"
    killer = Killer(out / "results.jsonl", victim, after=8)
    killer.start()
    summary = run_experiment(mux_config(out, 40))
    killer.join(30)
    assert killer.killed_pid is not None, f"no live {victim} to kill"
    assert killer.restarted, f"{victim} was not restarted"
    assert (summary.n, summary.errors, summary.open_failures) == (40, 0, 0), summary.error_kinds
    ids = [r.problem_id for r in _results(out)]
    assert len(ids) == 40 and len(set(ids)) == 40


def test_actor_out_of_restarts_stops_the_run_with_one_line_and_resume_completes(
    ray_session: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    path = _write(mux_config(out, 40, actor_restarts=0), tmp_path / "c.yaml")
    killer = Killer(out / "results.jsonl", "ModelActor", after=8, wait_restart=False)
    killer.start()
    assert main(["run", str(path)]) == 1
    killer.join(30)
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("slmsim")]
    assert len(err) == 1, err
    assert err[0].startswith("slmsim run: error: model actor ") and "restart budget (0" in err[0], err[0]
    kept = len(_results(out))
    assert kept >= 8
    assert main(["run", str(path), "run.actor_restarts=3"]) == 0
    ids = [r.problem_id for r in _results(out)]
    assert len(ids) == 40 and len(set(ids)) == 40
    assert json.loads((out / "summary.json").read_text())["errors"] == 0


# --- secrets --------------------------------------------------------------------------

KEY = 'sk-"q\\u%2B+x/y=Z-0123456789'  # a quote, a backslash, a percent sign and a plus


def key_forms(key: str) -> list[bytes]:
    forms = {
        key,
        json.dumps(key)[1:-1],
        json.dumps(json.dumps(key)[1:-1])[1:-1],
        urllib.parse.quote(key, safe=""),
        urllib.parse.quote(key),
        urllib.parse.quote_plus(key),
        base64.b64encode(f"user:{key}".encode()).decode(),
        base64.b64encode(key.encode()).decode()[:-4],
    }
    return [f.encode() for f in forms]


def test_a_key_with_quote_backslash_percent_plus_never_reaches_an_artefact(tmp_path: Path) -> None:
    # As a user runs it: the key exported in the shell, `slmsim run` starting its own Ray
    # (whose worker processes inherit the key), Ray's session logs kept where we can read them.
    ray_tmp = Path(tempfile.mkdtemp(prefix="slr-", dir="/tmp"))  # short: Ray's socket paths are limited
    out = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(SLMSIM_PROBE_KEY=KEY, RAY_TMPDIR=str(ray_tmp), RAY_AUTH_MODE="disabled")
    try:
        with FakeOpenAI(latency_s=0.0, echo_key=True) as server:
            tree = live_config(out, server.base_url, 10).model_dump(mode="json")
            tree["models"][0]["api_key_env"] = "SLMSIM_PROBE_KEY"
            tree["store"] = {"mode": "record"}
            path = _write(config_from_tree(tree), tmp_path / "c.yaml")
            proc = subprocess.run(
                [sys.executable, "-m", "experiments.cli", "run", str(path)],
                env=env,
                capture_output=True,
                timeout=300,
            )
        assert proc.returncode == 0, proc.stderr[-2000:]
        summary = json.loads((out / "summary.json").read_text())
        assert summary["n"] == 10 and summary["error_kinds"] == {"client": 5}, "the server echoed the key 10 times"
        texts = [r.final_text or "" for r in _results(out)]
        assert sum("***" in t for t in texts) == 5, "echoed keys are masked, not dropped"
        files = [p for p in [*out.rglob("*"), *ray_tmp.rglob("*")] if p.is_file() and not p.is_socket()]
        assert any(p.parent.name == "store" for p in files) and any(p.suffix == ".log" for p in files)
        for artefact in [proc.stdout, proc.stderr, *(p.read_bytes() for p in files)]:
            for form in key_forms(KEY):
                assert form not in artefact, f"key form {form!r} leaked"
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
