"""The alpha-UMi driver on Ray: run directory contract, resume (also after SIGKILL), the CLI's errors."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from experiments.cli.alpha_umi import main
from experiments.runtime.config_io import load_model
from experiments.studies.alpha_umi.loop_run import run_loop_async
from experiments.studies.alpha_umi.static_run import run_static_async
from protocols.alpha_umi import AlphaUmiConfig, LoopSummary, StaticSummary
from tests.experiments.kill_resume import kill_after, run_to_end, slmsim

pytestmark = [pytest.mark.ray]

REPO = Path(__file__).resolve().parents[2]
STATIC = REPO / "experiments" / "configs" / "alpha_umi_static_sim.yaml"
LOOP = REPO / "experiments" / "configs" / "alpha_umi_loop_sim.yaml"
LOOP_SINGLE = REPO / "experiments" / "configs" / "alpha_umi_loop_single_sim.yaml"


def _ids(run_dir: Path) -> list[str]:
    return [json.loads(line)["problem_id"] for line in (run_dir / "results.jsonl").read_text().splitlines()]


def test_static_sim_run_writes_the_contract_and_resumes_without_calls(ray_session: None, tmp_path: Path) -> None:
    config = load_model(AlphaUmiConfig, STATIC, [f"run.out_dir={tmp_path}", "dataset.limit=12", "run.progress=false"])
    first = asyncio.run(run_static_async(config))
    assert isinstance(first, StaticSummary)
    assert {p.name for p in tmp_path.iterdir()} >= {"config.yaml", "results.jsonl", "summary.json"}
    ids = _ids(tmp_path)
    assert len(ids) == first.n == first.n_expected and len(set(ids)) == len(ids)
    assert set(first.sources) == {"sim"} and set(first.usage_by_role) == {"planner", "caller", "summarizer"}
    again = asyncio.run(run_static_async(config))
    assert again.original == first.original and _ids(tmp_path) == ids
    assert again.sources == first.sources  # recomputed from the file, no new model call


@pytest.mark.parametrize("config_path", [LOOP, LOOP_SINGLE], ids=["multi", "single"])
def test_loop_sim_run_counts_outcomes_tokens_and_observations(
    ray_session: None, tmp_path: Path, config_path: Path
) -> None:
    config = load_model(AlphaUmiConfig, config_path, [f"run.out_dir={tmp_path}", "dataset.limit=16"])
    summary = asyncio.run(run_loop_async(config))
    assert isinstance(summary, LoopSummary)
    assert summary.n == 16 and summary.finished + summary.gave_up + summary.exhausted == 16
    assert sum(summary.observations.values()) > 16 and summary.observations.get("recorded", 0) > 0
    roles = {"backbone"} if config.agent.variant == "single" else {"planner", "caller", "summarizer"}
    assert set(summary.usage_by_role) == roles
    assert summary.mean_model_calls >= summary.mean_steps


def test_cli_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(STATIC), "agent.planner=nobody", f"run.out_dir={tmp_path}"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nobody" in err
    assert main(["run", str(STATIC), "predictor=gold", "mode=loop", f"run.out_dir={tmp_path}"]) == 2
    assert not (tmp_path / "results.jsonl").exists()


@pytest.mark.slow
def test_sigkill_mid_static_run_then_resume_gives_each_step_once(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = slmsim(
        "alpha-umi", "run", str(STATIC), f"run.out_dir={out}", "dataset.limit=16", "run.problems_in_flight=4",
        # Real sleeping (simulated latency x 0.05) makes the run long enough to kill early.
        *(f"models.{i}.time_scale=0.05" for i in range(3)),
    )  # fmt: skip
    partial = kill_after(args, out / "results.jsonl", 12)
    done = run_to_end([*args, "run.problems_in_flight=32", *(f"models.{i}.time_scale=0" for i in range(3))])
    assert done.returncode == 0, done.stderr[-2000:]
    ids = _ids(out)
    summary = json.loads((out / "summary.json").read_text())
    assert 0 < partial < summary["n_expected"], f"kill landed at {partial} steps; the test needs a mid-run kill"
    assert len(ids) == len(set(ids)) == summary["n_expected"] == summary["n"]
    # The resume evaluated exactly the steps that had no result, and no finished one again.
    assert summary["evaluated_this_run"] == summary["n_expected"] - partial
    assert summary["recomputed"] == 0
