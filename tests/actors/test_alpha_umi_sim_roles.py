"""Simulated alpha-UMi roles on the real ToolBench steps: calibrated to the single-LLM row, wrong like small models."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from actors.backends.sim import SimBackend
from actors.backends.sim.cards import load_cards
from actors.backends.sim.tooluse import CALL_SHARE, EMPTY_ARGS_SHARE, Skill, choose_call, skill_of
from experiments.studies.alpha_umi.static_run import evaluate_step
from orchestrators.alpha_umi.metrics import aggregate
from orchestrators.alpha_umi.static import StaticStep, build_steps
from protocols.alpha_umi import AgentSpec, AlphaUmiConfig
from protocols.config import ModelSpec

DATA = Path(__file__).resolve().parents[2] / "datasets" / "data" / "alpha_umi_toolbench" / "out_of_domain.json"
# The single-LLM 7B row of the alpha-UMi static table (out-of-domain), datasets/data/calibration/public_results.yaml.
SINGLE_LLM_ROW = {"plan_acc": 0.8461, "act_em": 0.5654, "hallu": 0.0226, "arg_f1": 0.5009, "rouge_l": 0.4799}
TOLERANCE = {"plan_acc": 0.02, "act_em": 0.03, "hallu": 0.012, "arg_f1": 0.03, "rouge_l": 0.045}


@pytest.fixture(scope="module")
def steps() -> list[StaticStep]:
    return build_steps(json.loads(DATA.read_text()), "out_of_domain")


def test_step_mix_constants_are_the_files(steps: list[StaticStep]) -> None:
    calls = [s for s in steps if s.gold_decision == "caller"]
    assert len(calls) / len(steps) == CALL_SHARE
    empty = sum(json.loads((s.gold_next or "").split("Action Input:", 1)[1]) == {} for s in calls)
    assert empty / len(calls) == EMPTY_ARGS_SHARE


def test_the_card_default_is_the_cited_single_llm_row() -> None:
    tu = load_cards().card("prior:7B").tool_use
    assert tu.model_dump() == pytest.approx(SINGLE_LLM_ROW)


def _run(steps: list[StaticStep], agent: AgentSpec, seed: int) -> dict[str, float]:
    config = AlphaUmiConfig(models=(ModelSpec(name="m", card="prior:7B"),), agent=agent, seed=seed)
    models = {"m": SimBackend(ModelSpec(name="m", card="prior:7B"), seed=seed)}

    async def go() -> list[object]:
        return list(await asyncio.gather(*(evaluate_step(s, config, models, "t") for s in steps)))  # type: ignore[arg-type]

    from experiments.studies.alpha_umi.static_run import step_score

    m = aggregate([step_score(r) for r in asyncio.run(go())])  # type: ignore[arg-type]
    return {"plan_acc": m.plan_acc, "act_em": m.act_em, "hallu": m.hallu, "arg_f1": m.arg_f1, "rouge_l": m.rouge_l}


def test_single_llm_sim_reproduces_its_calibration_row(steps: list[StaticStep]) -> None:
    """Calibrated to a single-model figure: the simulated single-LLM agent lands on the cited row (2 seeds)."""
    runs = [_run(steps, AgentSpec(variant="single", backbone="m"), seed) for seed in (0, 1)]
    for key, target in SINGLE_LLM_ROW.items():
        mean = sum(r[key] for r in runs) / len(runs)
        assert abs(mean - target) < TOLERANCE[key], (key, mean, target)


def test_hallucinated_names_are_never_listed_and_arguments_keep_gold_keys(steps: list[StaticStep]) -> None:
    skill = Skill(plan=0.8, tool=0.5, hallu=0.3, value=0.5, keep_word=0.5)
    hallu = right = 0
    for s in steps:
        if s.gold_decision != "caller":
            continue
        gold_tool = (s.gold_next or "").split("\n")[0].removeprefix("Action: ").strip()
        gold_args = json.loads((s.gold_next or "").split("Action Input:", 1)[1])
        tool, args = choose_call(skill, s.gold_next or "", s.tool_names, (0, s.id))
        if tool not in s.tool_names:
            hallu += 1
        elif tool == gold_tool:
            right += 1
            assert set(args) == set(gold_args)
    assert 0.2 < hallu / 1146 < 0.4
    assert 0.4 < right / 1146 < 0.6


def test_skill_algebra_inverts_the_metric_figures() -> None:
    skill = skill_of(load_cards().card("prior:7B").tool_use)
    assert skill.tool == pytest.approx(0.5654 / 0.8461)
    assert 0.0 < skill.hallu < 0.05
    assert 0.5 < skill.value < 0.7
