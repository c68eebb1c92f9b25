"""Simulated models computed in each runner: when it applies (slept latency only where the model's cap
cannot bind), and that it changes no result."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from experiments.runtime.config_io import load_config
from experiments.runtime.driver import ModelPool, run_experiment, runner_models, store_dir_of
from experiments.runtime.job import in_runner, peak_calls
from protocols.config import ExperimentConfig, ModelSpec

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "experiments" / "configs" / "demo_synthetic.yaml"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, True),
        ({"faults": {"server_error": 0.2}}, True),  # a fault draw is keyed by request and attempt
        ({"time_scale": 0.01}, False),  # 2 runners x 32 problems x k=3 calls could queue behind max_in_flight 32
        ({"time_scale": 0.01, "max_in_flight": 191}, False),
        ({"time_scale": 0.01, "max_in_flight": 192}, True),  # the cap cannot bind: no queue to share
        ({"replicas": 2}, False),
        ({"replicas": "per_node"}, False),
        ({"resources": {"gpu_box": 0.01}}, False),
        ({"requests_per_minute": 600}, False),  # a limit every caller shares
        ({"tokens_per_minute": 10000}, False),
        ({"backend": "fake"}, False),
        ({"backend": "openai", "base_url": "http://127.0.0.1:9/v1"}, False),
    ],
)
def test_only_a_simulator_with_nothing_shared_runs_in_the_runners(fields: dict[str, object], expected: bool) -> None:
    config = load_config(DEMO)
    spec = ModelSpec.model_validate({"name": "Mixtral-8x7B-Instruct", "backend": "sim", **fields})
    assert in_runner(spec, config) is expected


@pytest.mark.parametrize(
    ("orchestrator", "peaks"),
    [
        ({"kind": "single", "model": "a"}, {"a": 1, "b": 0}),
        ({"kind": "self_consistency", "model": "a", "k": 5}, {"a": 5, "b": 0}),
        ({"kind": "slm_mux", "models": ["a", "b", "a"], "k": 3}, {"a": 6, "b": 3}),
        ({"kind": "agent_forest", "models": ["a", "b"], "k": 4}, {"a": 4, "b": 4}),
        ({"kind": "debate", "models": ["a", "a", "b"], "rounds": 3}, {"a": 2, "b": 1}),
        ({"kind": "moa", "proposers": ["a", "b"], "aggregator": "a", "layers": 2}, {"a": 1, "b": 1}),
        ({"kind": "mav", "proposers": ["a", "b"], "verifiers": ["b"], "k": 2}, {"a": 2, "b": 4}),
        ({"kind": "stacking", "structure": "Agent[a_0]@b"}, {"a": None, "b": None}),
    ],
)
def test_peak_calls_is_the_largest_round_of_one_problem(orchestrator: dict[str, object], peaks: dict[str, int]) -> None:
    config = ExperimentConfig.model_validate(
        {
            "name": "x",
            "dataset": {"name": "synthetic"},
            "models": [{"name": "a", "backend": "sim"}, {"name": "b", "backend": "sim"}],
            "orchestrator": orchestrator,
        }
    )
    assert {m: peak_calls(config.orchestrator, m) for m in peaks} == peaks


def test_a_model_that_asks_for_replicas_keeps_its_actors_and_stacking_keeps_them_all(tmp_path: Path) -> None:
    config = load_config(DEMO, [f"run.out_dir={tmp_path}", "models.1.replicas=2"])
    local = runner_models(config)
    assert sorted(local) == ["Gemma-2-27B-Instruct", "Llama-3.1-8B-Instruct"]
    assert all(m.spec == config.models[0] or m.spec == config.models[2] for m in local.values())
    slept = [f"models.{i}.{k}={v}" for i in range(3) for k, v in (("time_scale", 0.01), ("max_in_flight", 192))]
    shared = load_config(DEMO, [f"run.out_dir={tmp_path}", *slept, "models.1.time_scale=0"])
    assert len(runner_models(shared)) == 3, "the cap cannot bind: all three in the runners"
    assert sorted(runner_models(shared, shared_pool=True)) == ["Mixtral-8x7B-Instruct"], "other runs share the cap"
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
@pytest.mark.parametrize("time_scale", [0.0, 0.002])
def test_runners_computing_the_simulator_give_the_model_actors_results_faults_included(
    ray_session: None, tmp_path: Path, time_scale: float
) -> None:
    # Injected 429/503/timeouts with one backend retry: some problems need the driver's
    # re-attempts, whose fault draws continue the attempt count on the same runner.
    # Slept latency too (the backend's retry waits in simulated time), with a cap that cannot bind.
    faults = [f"models.{i}.faults={{rate_limit: 0.1, server_error: 0.15, timeout: 0.05}}" for i in range(3)]
    retries = [f"models.{i}.max_retries=1" for i in range(3)]
    latency = [f"models.{i}.{k}={v}" for i in range(3) for k, v in (("time_scale", time_scale), ("max_in_flight", 192))]
    common = ["dataset.limit=24", "run.progress=false", "run.retry_backoff_s=0.01", *faults, *retries, *latency]
    runs = {}
    for name, local in (("runners", True), ("actors", False)):
        config = load_config(DEMO, [*common, f"run.out_dir={tmp_path / name}"])
        # The runners' arm on its own pool: a shared one keeps slept models behind its actors.
        pool = None if local else ModelPool(config.seed, config.store, store_dir_of(config))
        try:
            summary = run_experiment(config, models=pool, sim_in_runners=local)
            spawned = sorted(pool.specs) if pool else []
        finally:
            if pool:
                pool.shutdown()
        assert summary.n == 24
        runs[name] = (_results(tmp_path / name), spawned, *_log(tmp_path / name), summary)
    in_runners, _, named, retried, summary = runs["runners"]
    with_actors, spawned, none, retried_with_actors, _ = runs["actors"]
    assert named == sorted(spawned) and len(spawned) == 3 and none == []
    assert summary.sources == {"sim": summary.calls}, "provenance: every completion says it was simulated"
    assert retried > 0 and retried == retried_with_actors, "the faults needed the same re-attempts"
    assert in_runners == with_actors
