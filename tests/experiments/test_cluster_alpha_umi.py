"""alpha-UMi with model ``replicas`` > 1: the run directory routes calls as the driver does (a ReplicaSet)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from experiments.runtime.config_io import load_model
from experiments.runtime.placement import ReplicaSet
from experiments.studies.alpha_umi.loop_run import run_loop_async
from experiments.studies.alpha_umi.rundir import model_pool, remote_models
from protocols.alpha_umi import AlphaUmiConfig

pytestmark = [pytest.mark.ray]

LOOP = Path(__file__).resolve().parents[2] / "experiments" / "configs" / "alpha_umi_loop_sim.yaml"


def _config(out: Path, replicas: int) -> AlphaUmiConfig:
    overrides = [f"run.out_dir={out}", "dataset.limit=10", "run.progress=false"]
    overrides += [f"models.{i}.replicas={replicas}" for i in range(3)]
    return load_model(AlphaUmiConfig, LOOP, overrides)


def test_replicas_route_through_a_replica_set_and_change_no_result(ray_session: None, tmp_path: Path) -> None:
    two = _config(tmp_path / "two", 2)
    pool = model_pool(two)
    try:
        models = remote_models(pool)
        assert all(isinstance(m, ReplicaSet) and len(m.handles) == 2 for m in models.values())
    finally:
        pool.shutdown()
    replicated = asyncio.run(run_loop_async(two))
    single = asyncio.run(run_loop_async(_config(tmp_path / "one", 1)))
    assert replicated.n == single.n == 10 and replicated.errors == 0
    keep = {"wall_s", "run_id"}  # replicas are execution, not identity: the run id is the same too
    assert replicated.model_dump(exclude=keep) == single.model_dump(exclude=keep)
    assert replicated.run_id == single.run_id
    one_lines = (tmp_path / "one" / "results.jsonl").read_text().splitlines()
    two_lines = (tmp_path / "two" / "results.jsonl").read_text().splitlines()
    assert len(two_lines) == 10 and len(one_lines) == 10
