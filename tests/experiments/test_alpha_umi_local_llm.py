"""alpha-UMi on the real Gemma 3 270M (llama.cpp, completions endpoint), then replayed with the server stopped."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from experiments.runtime.config_io import load_model
from experiments.serve.local_llm import stop_server
from experiments.studies.alpha_umi.loop_run import run_loop_async
from protocols.alpha_umi import AlphaUmiConfig
from tests.experiments.gemma_server import normalised

pytestmark = [pytest.mark.llm, pytest.mark.ray, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "experiments" / "configs" / "alpha_umi_gemma.yaml"


def _config(base_url: str, out: Path, store: Path, mode: str) -> AlphaUmiConfig:
    return load_model(
        AlphaUmiConfig,
        CONFIG,
        [
            f"models.0.base_url={base_url}",
            "dataset.count=2",
            "agent.max_tokens=40",
            "agent.max_steps=1",
            "agent.max_model_calls=2",
            f"run.out_dir={out}",
            "run.progress=false",
            f"store.mode={mode}",
            f"store.path={store}",
        ],
    )


def test_live_roles_then_replay_without_server_give_identical_results(
    ray_session: None, gemma: tuple[str, Any], tmp_path: Path
) -> None:
    base_url, proc = gemma
    store = tmp_path / "store"
    live = asyncio.run(run_loop_async(_config(base_url, tmp_path / "live", store, "record")))
    assert live.n == 2 and live.sources.get("live", 0) > 0 and live.errors == 0
    assert set(live.usage_by_role) >= {"planner"}
    calls = [json.loads(x) for x in (tmp_path / "live" / "results.jsonl").read_text().splitlines()]
    texts = [e["reply"]["text"] for r in calls for e in r["trace"] if e["kind"] == "call"]
    assert texts and all(isinstance(t, str) for t in texts)  # real generations, whatever their quality
    stop_server(proc)
    replay = asyncio.run(run_loop_async(_config(base_url, tmp_path / "replay", store, "replay")))
    assert replay.sources.get("replay", 0) == live.sources["live"] and "live" not in replay.sources
    assert normalised(tmp_path / "live" / "results.jsonl") == normalised(tmp_path / "replay" / "results.jsonl")
