"""The alpha-UMi static evaluation: our metrics agree with a port of the original script on the same predictions."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path
from typing import Any

import pytest
from rouge import Rouge

from experiments.runtime.config_io import validate_tree
from experiments.studies.alpha_umi.static_run import run_static_async
from orchestrators.alpha_umi.metrics import aggregate, parse_output, rouge_l_f, score_step
from orchestrators.alpha_umi.static import StaticStep, build_steps
from protocols.alpha_umi import AlphaUmiConfig, StaticSummary
from tests.experiments import alpha_umi_original_eval as original

DATA = Path(__file__).resolve().parents[2] / "datasets" / "data" / "alpha_umi_toolbench" / "out_of_domain.json"


@pytest.fixture(scope="module")
def steps() -> list[StaticStep]:
    return build_steps(json.loads(DATA.read_text()), "out_of_domain")


def _config(tmp: Path, predictor: str) -> AlphaUmiConfig:
    return validate_tree(
        AlphaUmiConfig,
        {
            "name": f"au-{predictor}",
            "predictor": predictor,
            "agent": {"variant": "multi", "planner": "p", "caller": "c", "summarizer": "s"},
            "run": {"out_dir": str(tmp / predictor), "progress": False},
        },
    )


def _ours(summary: StaticSummary) -> dict[str, float]:
    m = summary.original
    return {
        "plan_em": m.plan_acc,
        "action_em": m.act_em,
        "hallu_rate": m.hallu,
        "f1": m.arg_f1,
        "rouge": m.rouge_l,
        "easy_f1": m.easy_f1 or 0.0,
        "hard_f1": m.hard_f1 or 0.0,
    }


def _port_on_run(run_dir: Path, steps: list[StaticStep]) -> dict[str, float]:
    by_id = {s.id: s for s in steps}
    data = []
    for line in (run_dir / "results.jsonl").read_text().splitlines():
        row = json.loads(line)
        step = by_id[row["problem_id"]]
        data.append({"reference": step.reference, "predictions": row["final_text"], "tools": list(step.tools)})
    return original.evaluate(data)


def test_the_test_set_has_1547_planner_steps(steps: list[StaticStep]) -> None:
    assert len(steps) == 1547
    assert sum(s.gold_decision == "caller" for s in steps) == 1146
    assert sum(s.gold_decision == "give up" for s in steps) == 107


@pytest.fixture(scope="module")
def reference_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, StaticSummary]]:
    """The three reference predictors, each run once through the real driver (no model, no Ray)."""
    root = tmp_path_factory.mktemp("au")
    return {p: (root / p, asyncio.run(run_static_async(_config(root, p)))) for p in PREDICTORS}


PREDICTORS = ("gold", "first_tool_empty", "always_conclude")


def test_gold_predictions_score_1_1_0_1_1(reference_runs: dict[str, tuple[Path, StaticSummary]]) -> None:
    summary = reference_runs["gold"][1]
    m = summary.original
    assert (summary.n, summary.n_expected) == (1547, 1547)
    assert [round(x, 6) for x in (m.plan_acc, m.act_em, m.hallu, m.arg_f1, m.rouge_l)] == [1, 1, 0, 1, 1]
    assert summary.majority_plan_acc == pytest.approx(1146 / 1547)


@pytest.mark.parametrize("predictor", PREDICTORS)
def test_reference_predictors_match_the_original_script(
    reference_runs: dict[str, tuple[Path, StaticSummary]], steps: list[StaticStep], predictor: str
) -> None:
    run_dir, summary = reference_runs[predictor]
    ours = _ours(summary)
    port = _port_on_run(run_dir, steps)
    for key, value in port.items():
        assert round(ours[key], 4) == round(value, 4), key


def _perturbed(step: StaticStep, rng: random.Random) -> str:
    """A prediction that is wrong in one of the ways real models are, or the gold one."""
    kind = rng.choice(["gold", "tool", "hallu", "value", "type", "badjson", "extra_key", "conclude", "give_up", "call"])
    names = step.tool_names
    ref = parse_output(step.reference)
    head = "asssitant: thinking Next: caller.</s>caller: "
    if ref.plan == "call" and kind in ("tool", "hallu", "value", "type", "badjson", "extra_key"):
        args = json.loads(ref.action_input or "{}")
        action = ref.action
        if kind == "tool":
            action = rng.choice(names)
        elif kind == "hallu":
            action = f"{action}_v2"
        elif kind == "value" and args:
            k = rng.choice(sorted(args))
            args[k] = f"{args[k]}x"
        elif kind == "type" and args:
            k = rng.choice(sorted(args))
            args[k] = int(args[k]) if str(args[k]).isdigit() else str(args[k])
        elif kind == "extra_key":
            args["page"] = 2
        text = "{not json" if kind == "badjson" else json.dumps(args)
        return f"{head}Action: {action}\nAction Input: {text}"
    if kind == "conclude":
        words = (ref.answer or step.instruction).split()
        kept = " ".join(w for w in words if rng.random() < 0.6) or "none"
        return f"asssitant: done Next: conclusion.</s>conclusion: {kept}"
    if kind == "give_up":
        return "I cannot do this. Next: give up."
    if kind == "call":
        return f"{head}Action: {rng.choice(names)}\nAction Input: {{}}"
    return step.reference


@pytest.mark.parametrize("seed", [0])
def test_perturbed_predictions_match_the_original_script(steps: list[StaticStep], seed: int) -> None:
    rng = random.Random(seed)
    preds = [_perturbed(s, rng) for s in steps]
    scores = [
        score_step(parse_output(s.reference), parse_output(p), s.tool_names) for s, p in zip(steps, preds, strict=True)
    ]
    m = aggregate(scores)
    port = original.evaluate(
        [
            {"reference": s.reference, "predictions": p, "tools": list(s.tools)}
            for s, p in zip(steps, preds, strict=True)
        ]
    )
    ours = {"plan_em": m.plan_acc, "action_em": m.act_em, "hallu_rate": m.hallu, "f1": m.arg_f1, "rouge": m.rouge_l}
    ours |= {"easy_f1": m.easy_f1 or 0.0, "hard_f1": m.hard_f1 or 0.0}
    for key, value in port.items():
        assert round(ours[key], 4) == round(value, 4), key
    assert m.hallu > 0.01  # the perturbations do hallucinate
    fixed = aggregate(scores, fixed=True)
    assert fixed.hallu > m.hallu  # over predicted calls, not over all steps


def test_rouge_l_matches_the_rouge_package(steps: list[StaticStep]) -> None:
    rng = random.Random(3)
    answers = [s.gold_next for s in steps if s.gold_decision == "conclusion" and s.gold_next]
    rouge = Rouge()
    for ref in answers[:120]:
        words = ref.split()
        hyp = " ".join(w for w in words if rng.random() < 0.5) + " . extra words here" if words else "none"
        expected = rouge.get_scores(hyp, ref)[0]["rouge-l"]["f"]
        assert rouge_l_f(hyp, ref) == pytest.approx(expected, abs=1e-12)


def test_fixed_arg_f1_counts_what_the_original_drops() -> None:
    ref = parse_output("assistant: x Next: caller.</s>caller: Action: t\nAction Input: not json</s>")
    same = parse_output("asssitant: x Next: caller.</s>caller: Action: t\nAction Input: not json")
    other = parse_output("asssitant: x Next: caller.</s>caller: Action: t\nAction Input: {}")
    scores: list[Any] = [score_step(ref, same, ("t",)), score_step(ref, other, ("t",))]
    assert aggregate(scores).n_args_scored == 0
    fixed = aggregate(scores, fixed=True)
    assert (fixed.n_args_scored, fixed.arg_f1) == (2, 0.5)
