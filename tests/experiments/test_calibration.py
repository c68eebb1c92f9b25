"""The calibration command: target selection, the step fit, and the committed cards within 1.5 points."""

from __future__ import annotations

import math

import pytest

from actors.backends.sim import load_cards
from experiments.studies.simulator.calibrate import (
    FITTED,
    INPUTS_PATH,
    TOLERANCE,
    check,
    expected_accuracy,
    fit_step,
    gpqa_population,
    public_results_path,
    public_targets,
    read_yaml,
)


def test_public_targets_prefer_the_slm_mux_t0_figures() -> None:
    targets = public_targets(read_yaml(public_results_path()))
    assert targets["Llama-3.1-8B-Instruct"]["math500"] == {"value": 48.6, "source": "slm_mux_T0"}
    assert targets["GPT-4o"]["math500"]["value"] == 79.8  # not the r1-table figure
    assert targets["Qwen2.5-7B-Instruct"]["gsm8k"] == {"value": 91.6, "source": "qwen25"}
    assert targets["Mistral-Small-24B-Instruct"]["math500"]["source"] == "slm_mux_val_T0.5_MATH"


@pytest.mark.parametrize(
    ("target", "accuracy"),
    [(0.0, 0.0), (0.25, 0.25), (0.5, 0.5), (0.75, 0.75), (1.0, 1.0), (0.6, 0.5)],
)
def test_fit_step_hits_the_closest_reachable_accuracy(target: float, accuracy: float) -> None:
    thresholds = [-1.0, 0.0, 1.0, 2.0]
    a = fit_step(thresholds, [True] * 4, [False] * 4, target)
    reached = sum(a > t for t in thresholds) / 4
    assert math.isclose(reached, accuracy) or abs(reached - target) <= 0.125


def test_every_card_covers_the_public_models() -> None:
    cards = load_cards()
    public = read_yaml(public_results_path())["single_model"]
    assert set(public) <= set(cards.cards)
    for card in cards.cards.values():
        assert set(FITTED) <= set(card.ability) and "gpqa" in card.ability


def test_gpqa_structure_fit_is_within_tolerance() -> None:
    cards = load_cards()
    population = gpqa_population(read_yaml(INPUTS_PATH))
    assert len(population) == 198
    for name, card in cards.cards.items():
        sim = 100 * expected_accuracy(cards, name, population)
        assert abs(sim - card.targets["gpqa"].value) <= TOLERANCE, name


@pytest.mark.parametrize(
    "names",
    [
        ("Llama-3.1-8B-Instruct", "Mixtral-8x7B-Instruct", "Gemma-2-27B-Instruct"),
        ("Qwen2.5-7B-Instruct", "GPT-4o", "DeepSeek-R1-Distill-Qwen-7B"),
    ],
)
async def test_committed_cards_match_their_targets_within_tolerance(names: tuple[str, ...]) -> None:
    """The real pipeline (sim backend + real graders, T=0, all problems) on the committed cards.

    ``slmsim calibrate --check`` does this for every card.
    """
    rows = await check(load_cards(), names)
    assert len(rows) == 3 * len(names)
    for row in rows:
        assert abs(row.sim - row.target) <= TOLERANCE, row


async def test_validation_report_is_labelled_simulated_and_has_every_section() -> None:
    from experiments.studies.simulator.validate import TRIO, orchestration_report, report

    text = await report(ks=(1, 3), seeds=(0, 1), names=TRIO, limit=60)
    assert text.startswith("=") and "SIMULATED" in text.splitlines()[0]
    for section in ("[1]", "[2]", "[3]", "[4]", "[5]", "[6]"):
        assert section in text
    orchestration = await orchestration_report(limit=30)
    assert "SIMULATED" in orchestration and "SLM-MUX" in orchestration


async def test_check_flags_a_card_whose_ability_moved() -> None:
    cards = load_cards()
    card = cards.cards["Llama-3.1-8B-Instruct"]
    moved = card.model_copy(update={"ability": {**card.ability, "math500": card.ability["math500"] + 0.5}})
    broken = cards.model_copy(update={"cards": {**cards.cards, card.name: moved}})
    rows = await check(broken, [card.name])
    math_row = next(r for r in rows if r.bench == "math500")
    assert math_row.sim - math_row.target > TOLERANCE
