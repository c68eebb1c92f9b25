"""Simulated models at ``time_scale`` 0 computed in each runner: when it applies, and that it changes no result."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from experiments.runtime.config_io import load_config
from experiments.runtime.driver import ModelPool, run_experiment, runner_models, store_dir_of
from experiments.runtime.job import in_runner
from protocols.config import ModelSpec

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "experiments" / "configs" / "demo_synthetic.yaml"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, True),
        ({"faults": {"server_error": 0.2}}, True),  # a fault draw is keyed by request and attempt
        ({"time_scale": 0.01}, False),  # latency queues behind the model's max_in_flight
        ({"replicas": 2}, False),
        ({"replicas": "per_node"}, False),
        ({"resources": {"gpu_box": 0.01}}, False),
        ({"requests_per_minute": 600}, False),  # a limit every caller shares
        ({"tokens_per_minute": 10000}, False),
        ({"backend": "fake"}, False),
        ({"backend": "openai", "base_url": "http://127.0.0.1:9/v1"}, False),
    ],
)
def test_only_an_immediate_simulator_with_nothing_shared_runs_in_the_runners(
    fields: dict[str, object], expected: bool
) -> None:
    assert in_runner(ModelSpec.model_validate({"name": "m", "backend": "sim", **fields})) is expected


def test_a_model_that_asks_for_replicas_keeps_its_actors_and_stacking_keeps_them_all(tmp_path: Path) -> None:
    config = load_config(DEMO, [f"run.out_dir={tmp_path}", "models.1.replicas=2"])
    local = runner_models(config)
    assert sorted(local) == ["Gemma-2-27B-Instruct", "Llama-3.1-8B-Instruct"]
    assert all(m.spec == config.models[0] or m.spec == config.models[2] for m in local.values())
    stacking = "orchestrator={kind: stacking, structure: 'Agent[Gemma-2-27B-Instruct_0]@Llama-3.1-8B-Instruct'}"
    assert runner_models(load_config(DEMO, [f"run.out_dir={tmp_path}", stacking])) == {}


def _results(run_dir: Path) -> list[dict[str, object]]:
    rows = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    for row in rows:
        row.pop("wall_s")
    return rows


def _log(run_dir: Path) -> tuple[list[str], int]:
    """The models the run computed in its runners, and how many problem re-attempts it made."""
    events = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert events[0]["event"] == "run_start"
    return list(events[0]["models_in_runners"]), sum(e["event"] == "problem_retry" for e in events)


@pytest.mark.ray
def test_runners_computing_the_simulator_give_the_model_actors_results_faults_included(
    ray_session: None, tmp_path: Path
) -> None:
    # Injected 429/503/timeouts with one backend retry: some problems need the driver's
    # re-attempts, whose fault draws continue the attempt count on the same runner.
    faults = [f"models.{i}.faults={{rate_limit: 0.1, server_error: 0.15, timeout: 0.05}}" for i in range(3)]
    retries = [f"models.{i}.max_retries=1" for i in range(3)]
    common = ["dataset.limit=24", "run.progress=false", "run.retry_backoff_s=0.01", *faults, *retries]
    runs = {}
    for name, local in (("runners", True), ("actors", False)):
        config = load_config(DEMO, [*common, f"run.out_dir={tmp_path / name}"])
        pool = ModelPool(config.seed, config.store, store_dir_of(config))
        try:
            summary = run_experiment(config, models=pool, sim_in_runners=local)
            spawned = sorted(pool.specs)
        finally:
            pool.shutdown()
        assert summary.n == 24
        runs[name] = (_results(tmp_path / name), spawned, *_log(tmp_path / name), summary)
    in_runners, no_actors, named, retried, summary = runs["runners"]
    with_actors, spawned, none, retried_with_actors, _ = runs["actors"]
    assert no_actors == [] and named == sorted(spawned) and len(spawned) == 3 and none == []
    assert summary.sources == {"sim": summary.calls}, "provenance: every completion says it was simulated"
    assert retried > 0 and retried == retried_with_actors, "the faults needed the same re-attempts"
    assert in_runners == with_actors
