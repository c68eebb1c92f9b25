"""The whole search end to end on simulated cards, tiny: every output file, overlap, honest labels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from experiments.studies.stacking.config import load_search_config
from experiments.studies.stacking.search import run_search_async

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.ray
@pytest.mark.slow
async def test_tiny_search_writes_every_output(ray_session: None, tmp_path: Path) -> None:
    config = load_search_config(
        REPO / "experiments" / "configs" / "stacking_math500.yaml",
        [
            "search.base_models=[Qwen2.5-72B-Instruct, Llama-3.3-70B-Instruct]",
            "search.train_data_number=3",
            "search.max_warmup_level=1",
            "search.max_layers=1",
            "dataset.limit=6",
            f"run.out_dir={tmp_path}",
        ],
    )
    report = await run_search_async(config)
    for name in ("warmup.md", "warmup.json", "chosen_structure.txt", "score_vs_layer.png", "search.json"):
        assert (tmp_path / name).is_file(), name
    assert (tmp_path / "test_summary.md").is_file()
    warm = json.loads((tmp_path / "warmup.json").read_text())
    assert {row["structure"] for row in warm} >= {"Qwen2.5-72B-Instruct", "GPT-4o"}
    assert all(row["n"] == 3 for row in warm)
    layers = sorted(tmp_path.glob("stacking_layer_*.json"))
    assert len(layers) == 1 and len(json.loads(layers[0].read_text())) == 1  # topN 2 -> one candidate
    assert report["test"]["n"] == 6 and report["source"] == "SIMULATED"
    assert report["chosen_structure"] == (tmp_path / "chosen_structure.txt").read_text().strip()
    assert report["sum_of_parts_s"] >= report["phases"]["warmup"]["wall_s"] > 0
    assert report["phases"]["warmup"]["max_overlap"] >= 2  # the chains ran side by side
    events = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert sum(e["event"] == "candidate_start" for e in events) == sum(e["event"] == "candidate_end" for e in events)
    test_dir = Path(report["test"]["run_dir"])
    assert (test_dir / "summary.json").is_file() and (test_dir / "results.jsonl").is_file()
