"""Every SLM-MUX-paper method end to end on Ray with simulated models (small synthetic set)."""

from __future__ import annotations

import pytest

from experiments.runtime.results import RESULTS, read_results
from experiments.studies.compare import configs_from_tree, run_comparison, write_report

MODELS = ["Llama-3.1-8B-Instruct", "Mixtral-8x7B-Instruct", "Gemma-2-27B-Instruct"]


@pytest.mark.ray
@pytest.mark.slow
def test_every_method_runs_on_ray_and_is_labelled_sim(ray_session, tmp_path) -> None:
    tree = {
        "base": {
            "name": "cmp",
            "dataset": {"name": "synthetic", "limit": 6},
            "models": [{"name": m} for m in MODELS],
            "run": {"out_dir": str(tmp_path), "runners": 1, "problems_in_flight": 8, "progress": False},
        },
        "methods": [
            {"label": "single", "kind": "single", "model": MODELS[2]},
            {"label": "sc", "kind": "self_consistency", "model": MODELS[2], "k": 3},
            {"label": "mux", "kind": "slm_mux", "models": MODELS, "k": 3, "validation_accuracy": {MODELS[2]: 0.6}},
            {"label": "af", "kind": "agent_forest", "models": MODELS, "k": 2},
            {"label": "moa", "kind": "moa", "proposers": MODELS, "aggregator": MODELS[2]},
            {"label": "debate", "kind": "debate", "models": MODELS, "rounds": 2},
            {"label": "mav", "kind": "mav", "proposers": MODELS[:2], "verifiers": MODELS[1:]},
        ],
    }
    configs = configs_from_tree(tree)
    summaries = run_comparison(configs, parallel=2)
    assert [s.n for s in summaries] == [6] * 7
    expected_calls = {"single": 6, "sc": 18, "mux": 54, "af": 36, "moa": 24, "debate": 36}
    for config, summary in zip(configs, summaries, strict=True):
        assert set(summary.sources) == {"sim"}
        label = config.run.out_dir.name
        if label in expected_calls:
            assert summary.calls == expected_calls[label], label
    results, _ = read_results(tmp_path / "mux" / RESULTS)
    for r in results:
        assert r.error is not None or r.details["chosen_model"] in MODELS
        assert set(r.details["per_model"]) == set(MODELS)
    paths = write_report(configs, summaries, tmp_path)
    assert all(p.exists() for p in paths)
