"""``slmsim calibrate --from POOL``: a known-truth recovery test on a pool drawn from the simulator itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from actors.backends.sim import SimBackend, load_cards
from datasets.synthetic import generate
from experiments.studies.simulator.pool_fit import main, run
from experiments.studies.simulator.pool_sim import base_cards, fit_abilities, replicas, simulate_entries, with_params
from experiments.studies.simulator.pool_stats import pool_stats
from experiments.studies.simulator.validate import FastGrader
from experiments.studies.slm_mux.config import PoolSpec
from experiments.studies.slm_mux.sample_pool import PoolMeta, read_pool, write_pool
from orchestrators.base import Collaborators
from protocols.config import ModelSpec
from tests.experiments.slm_pool_fakes import draw_pool_in_process

MODELS = ("Llama-3.2-3B-Instruct", "Qwen2.5-7B-Instruct")


@pytest.fixture(scope="module")
def sim_pool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 synthetic problems x 2 models x k=5 at T=0.7, drawn from the committed cards (the known truth)."""
    import asyncio

    problems = generate(seed=0, count=60)
    collab = Collaborators(models={m: SimBackend(ModelSpec(name=m), 0) for m in MODELS}, grader=FastGrader(), seed=0)
    entries, calls = asyncio.run(draw_pool_in_process(problems, collab, MODELS, PoolSpec(k=5, temperature=0.7)))
    out = tmp_path_factory.mktemp("pool")
    meta = PoolMeta(
        name="sim-truth",
        dataset="synthetic",
        models=MODELS,
        k=5,
        temperature=0.7,
        seed=0,
        n_problems=len(entries),
        model_calls=calls,
        sources={"sim": calls},
    )
    write_pool(out, entries, meta)
    return out


def test_fit_recovers_the_known_cards_and_predicts_held_out_methods(
    sim_pool: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small grids around the truth keep the test quick; the command searches the full ones.
    small = {"shared_sd": (1.0, 2.0), "stickiness": (1.0, 2.0), "focus_lost": (0.5, 0.8)}
    monkeypatch.setattr("experiments.studies.simulator.pool_fit.GRIDS", small)
    monkeypatch.setattr("experiments.studies.simulator.pool_fit.REPLICAS_FIT", 2)
    monkeypatch.setattr("experiments.studies.simulator.pool_fit.REPLICAS_PREDICT", 4)
    report = run(sim_pool, tmp_path / "fit", log=False, passes=1, folds=1)
    truth = load_cards()
    fitted = report["fitted"]["ability"]
    # Ordering and size of the abilities are recovered (the truth's synthetic abilities).
    true_gap = truth.card(MODELS[1]).ability["synthetic"] - truth.card(MODELS[0]).ability["synthetic"]
    assert (fitted[MODELS[1]] - fitted[MODELS[0]]) * true_gap > 0
    for m in MODELS:
        assert abs(fitted[m] - truth.card(m).ability["synthetic"]) < 1.0, m
    # Held-out predictions of every method are close to the pool's own results.
    assert set(report["mean_abs_error"]) == {"self_consistency", "slm_mux", "agent_forest"}
    assert all(err < 8.0 for err in report["mean_abs_error"].values()), report["mean_abs_error"]
    assert (tmp_path / "fit" / "cards.yaml").read_text().startswith("# FITTED")
    assert json.loads((tmp_path / "fit" / "report.json").read_text())["n_held_out"] > 20


def test_pool_statistics_see_agreement(sim_pool: Path) -> None:
    pool = read_pool(sim_pool)
    stats = pool_stats(pool.entries, MODELS)
    assert 0.0 < stats.wrong_agreement < stats.agreement <= 1.0
    assert stats.correlation > 0.0  # shared difficulty: models find the same problems hard


def test_a_missing_pool_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no sample pool" in err[0]


def test_a_one_model_pool_fits_and_predicts_self_consistency_only(
    sim_pool: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pool of one local model (e.g. a small llama.cpp model) has no cross-model statistics."""
    pool = read_pool(sim_pool)
    one = tmp_path / "one"
    entries = [e.model_copy(update={"samples": {MODELS[0]: e.samples[MODELS[0]]}}) for e in pool.entries]
    write_pool(one, entries, pool.meta.model_copy(update={"models": (MODELS[0],)}))
    monkeypatch.setattr("experiments.studies.simulator.pool_fit.GRIDS", {"stickiness": (1.0, 2.0)})
    monkeypatch.setattr("experiments.studies.simulator.pool_fit.REPLICAS_FIT", 2)
    monkeypatch.setattr("experiments.studies.simulator.pool_fit.REPLICAS_PREDICT", 4)
    report = run(one, tmp_path / "fit", log=False, passes=1, folds=1)
    assert set(report["mean_abs_error"]) == {"self_consistency"}
    assert report["fitted"]["ability"].keys() == {MODELS[0]}


def test_a_lower_knowledge_scale_spreads_per_problem_accuracy_at_equal_accuracy() -> None:
    """The statistic the fit matches moves with the parameter it fits (``knowledge_scale``)."""
    cards = base_cards(["pool-model"])
    problems = replicas(generate(seed=1, count=20), 3)
    spreads = []
    for scale in (0.6, 2.5):
        values = {"shared_sd": 0.5, "stickiness": 4.0, "focus_lost": 0.2, "knowledge_scale": scale}
        abilities = fit_abilities(with_params(cards, "synthetic", values, {}), problems, {"pool-model": 0.3}, 0.8)
        fitted = with_params(cards, "synthetic", values, abilities)
        stats = pool_stats(simulate_entries(fitted, problems, ["pool-model"], 5, 0.8, 0), ["pool-model"])
        assert stats.accuracy["pool-model"] == pytest.approx(0.3, abs=0.06)
        spreads.append(stats.spread)
    assert spreads[0] < spreads[1] - 0.05, spreads
