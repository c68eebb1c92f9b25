"""Compute-matched comparison: the comparison file format, the shipped paper configs, the table and plot."""

from __future__ import annotations

from pathlib import Path

import pytest

from experiments.runtime.config_io import ConfigError
from experiments.studies.compare import common_dir, configs_from_tree, load_comparison, render, write_report
from protocols.messages import Usage
from protocols.summary import RunSummary

BASE = {
    "name": "cmp",
    "dataset": {"name": "synthetic", "limit": 5},
    "models": [{"name": "A"}, {"name": "B"}],
    "run": {"out_dir": "runs/cmp"},
}

CONFIGS = Path(__file__).resolve().parents[2] / "experiments" / "configs"


def test_each_method_becomes_an_experiment_in_its_own_directory() -> None:
    configs = configs_from_tree(
        {
            "base": BASE,
            "methods": [
                {"label": "single A", "kind": "single", "model": "A"},
                {"kind": "slm_mux", "models": ["A", "B"], "k": 2},
            ],
        }
    )
    assert [c.name for c in configs] == ["cmp-single_A", "cmp-slm_mux-1"]
    assert [str(c.run.out_dir) for c in configs] == ["runs/cmp/single_A", "runs/cmp/slm_mux-1"]
    assert configs[1].orchestrator.kind == "slm_mux" and configs[1].orchestrator.k == 2  # type: ignore[union-attr]
    assert str(common_dir(configs)) == "runs/cmp"


@pytest.mark.parametrize(
    ("tree", "message"),
    [
        ({"base": BASE, "methods": [], "extra": 1}, "unknown top-level key"),
        ({"base": BASE, "methods": []}, "non-empty 'methods'"),
        ({"base": BASE, "methods": [{"label": "x", "kind": "single", "model": "A"}] * 2}, "duplicate method label"),
        ({"base": BASE, "methods": [{"label": "bad", "kind": "single", "model": "Z"}]}, "method 'bad'.*'Z'"),
        ({"base": BASE, "methods": [{"label": "k0", "kind": "slm_mux", "models": ["A"], "k": 0}]}, "method 'k0'"),
    ],
)
def test_bad_comparison_files_fail_with_a_named_problem(tree, message) -> None:
    with pytest.raises(ConfigError, match=message):
        configs_from_tree(tree)


PAPER_MODELS = ("Llama-3.1-8B-Instruct", "Mixtral-8x7B-Instruct", "Gemma-2-27B-Instruct")
KINDS = {"single", "self_consistency", "slm_mux", "agent_forest", "moa", "debate", "mav"}


@pytest.mark.parametrize("name", ["math500", "gsm8k", "gpqa"])
def test_shipped_three_slm_configs_cover_every_method(name) -> None:
    configs = load_comparison(CONFIGS / f"slm_mux_{name}_three.yaml")
    assert {c.orchestrator.kind for c in configs} == KINDS
    for c in configs:
        assert tuple(m.name for m in c.models) == PAPER_MODELS
        assert all(m.backend == "sim" for m in c.models)
        assert c.dataset.name == name
    mux = next(c.orchestrator for c in configs if c.orchestrator.kind == "slm_mux")
    assert (mux.k, mux.temperature) == (3, 0.3)  # type: ignore[union-attr]


def test_one_anchor_line_switches_every_model_to_live(tmp_path) -> None:
    text = (CONFIGS / "slm_mux_math500_three.yaml").read_text()
    live = text.replace(
        "backend: &backend {backend: sim}",
        'backend: &backend {backend: openai, base_url: "http://127.0.0.1:9/v1", api_key_env: KEY}',
    )
    assert live != text
    path = tmp_path / "live.yaml"
    path.write_text(live)
    for config in load_comparison(path):
        assert {(m.backend, m.base_url, m.api_key_env) for m in config.models} == {
            ("openai", "http://127.0.0.1:9/v1", "KEY")
        }


def _summary(name: str, acc: float, tokens: int, source: str = "sim") -> RunSummary:
    return RunSummary(
        run_id=name,
        name=name,
        orchestrator="x",
        dataset="synthetic",
        n=100,
        n_expected=100,
        correct=int(acc * 100),
        accuracy=acc,
        ci95_low=acc - 0.1,
        ci95_high=acc + 0.1,
        usage=Usage(prompt_tokens=tokens // 2, completion_tokens=tokens // 2),
        tokens_per_problem=tokens / 100,
        cost_usd=tokens * 1e-6,
        calls=300,
        sources={source: 300},
    )


def test_table_and_plot_place_every_method_at_its_cost(tmp_path) -> None:
    configs = configs_from_tree(
        {
            "base": BASE,
            "methods": [
                {"label": "s", "kind": "single", "model": "A"},
                {"label": "m", "kind": "slm_mux", "models": ["A", "B"]},
            ],
        }
    )
    summaries = [_summary("s", 0.5, 20_000), _summary("m", 0.6, 180_000)]
    text = render(configs, summaries)
    assert "SIMULATED" in text and "| m | 0.600 | [0.500, 0.700] | 180000 |" in text
    paths = write_report(configs, summaries, tmp_path)
    assert [p.name for p in paths] == ["comparison.md", "comparison.json", "accuracy_vs_tokens.png"]
    assert all(p.stat().st_size > 0 for p in paths)
    mixed = render(configs, [summaries[0], _summary("m", 0.6, 1, source="live")])
    assert "SIMULATED" not in mixed and "live" in mixed
