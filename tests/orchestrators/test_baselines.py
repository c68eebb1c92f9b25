"""The SLM-MUX paper's baselines on scripted models: single, self-consistency, Agent Forest, MoA, debate, MAV."""

from __future__ import annotations

import pytest

from actors.backends.fake import FakeBackend
from orchestrators.agent_forest import agent_forest
from orchestrators.base import Collaborators
from orchestrators.debate import debate
from orchestrators.mav import mav
from orchestrators.moa import moa
from orchestrators.prompts import FEW_SHOT_STOP
from orchestrators.single import self_consistency, single
from protocols.config import (
    AgentForestConfig,
    DebateConfig,
    MavConfig,
    MoAConfig,
    SelfConsistencyConfig,
    SingleConfig,
)
from protocols.messages import CallRecord, CompletionRequest, Failure, Problem
from tests.orchestrators.slm_fakes import FAIL, PROBLEM, FakeGrader, answers_by_index, boxed


def _collab(scripts: dict) -> tuple[Collaborators, dict[str, FakeBackend]]:
    models = {name: FakeBackend(script, model=name) for name, script in scripts.items()}
    return Collaborators(models=models, grader=FakeGrader(), run_id="r", seed=3), models


def _calls(trace) -> list[CallRecord]:
    return [e for e in trace if isinstance(e, CallRecord)]


async def test_single_chat_is_one_greedy_call() -> None:
    collab, models = _collab({"A": lambda r: boxed("0.5")})
    out = await single(PROBLEM, SingleConfig(model="A"), collab)
    (req,) = models["A"].requests
    assert req.temperature == 0.0 and req.messages and "\\boxed{}" in req.messages[0].content
    assert out.answer == "0.5" and out.final_text == boxed("0.5")


async def test_single_few_shot_uses_a_completions_prompt_with_stops() -> None:
    gsm = Problem(id="g", benchmark="gsm8k", question="2+2?", reference="4", answer_format="gsm8k")
    collab, models = _collab({"A": lambda r: " 2+2=4\n#### 4"})
    out = await single(gsm, SingleConfig(model="A", prompt_style="few_shot", shots=3), collab)
    (req,) = models["A"].requests
    assert req.prompt is not None and req.prompt.endswith("Question: 2+2?\nAnswer:")
    assert req.prompt.count("Question:") == 4 and req.prompt.count("#### ") == 3
    assert req.stop == FEW_SHOT_STOP and out.answer == "4"


async def test_single_failure_is_an_error_not_an_answer() -> None:
    collab, _ = _collab({"A": lambda r: FAIL})
    out = await single(PROBLEM, SingleConfig(model="A"), collab)
    assert out.final_text is None and out.error == FAIL and len(out.trace) == 1


async def test_self_consistency_majority_over_equivalent_answers() -> None:
    collab, models = _collab({"A": answers_by_index("2", "\\frac{1}{2}", None, "0.5", "2")})
    out = await self_consistency(PROBLEM, SelfConsistencyConfig(model="A", k=5), collab)
    # 1/2 vs 2: 2-2 tie with one model -> the earliest draw wins ("2" at index 0)
    assert out.answer == "2" and out.details["tie_break"] == "earliest_sample"
    assert [r.sample_index for r in models["A"].requests] == [0, 1, 2, 3, 4]
    assert len(_calls(out.trace)) == 5


async def test_agent_forest_pools_all_models_samples() -> None:
    collab, _ = _collab(
        {
            "A": answers_by_index("7", "7", "7"),  # A alone is very sure of 7
            "B": answers_by_index("0.5", "1/2", "3"),
            "C": answers_by_index("\\frac12", "9", "8"),
        }
    )
    out = await agent_forest(PROBLEM, AgentForestConfig(models=("A", "B", "C"), k=3), collab)
    # pooled: 7 x3 vs 1/2 x3 -> tie; 1/2 is backed by two models
    assert out.answer == "0.5" and out.details["tie_break"] == "more_models"
    assert out.details["votes"] == 3 and out.details["n"] == 9
    assert len(_calls(out.trace)) == 9


async def test_moa_aggregator_sees_proposers_answers_and_writes_the_answer() -> None:
    def aggregator(request: CompletionRequest) -> str:
        return boxed("5") if request.meta.role == "aggregator" else boxed("4")

    collab, models = _collab({"P1": answers_by_index("4", "4"), "P2": lambda r: FAIL, "Agg": aggregator})
    out = await moa(PROBLEM, MoAConfig(proposers=("P1", "P2"), aggregator="Agg", layers=2), collab)
    agg = models["Agg"].requests[-1]
    assert agg.meta.role == "aggregator" and agg.meta.candidates == ("4", None)
    assert "1. Reasoning" in agg.messages[0].content and "2." not in agg.messages[0].content
    layer2 = models["P1"].requests[1]
    assert layer2.meta.role == "aggregator" and layer2.sample_index == 1
    assert out.answer == "5" and out.details["proposer_answers"] == [["4", None], ["4", None]]
    assert [c.label for c in _calls(out.trace)] == ["moa_layer_1"] * 2 + ["moa_layer_2"] * 2 + ["moa_aggregator"]


async def test_moa_aggregator_failure_is_the_outcome_error() -> None:
    collab, _ = _collab({"P": lambda r: boxed("4"), "Agg": lambda r: FAIL})
    out = await moa(PROBLEM, MoAConfig(proposers=("P",), aggregator="Agg"), collab)
    assert out.error == FAIL and out.final_text is None


async def test_debate_rounds_show_previous_answers_and_vote_at_the_end() -> None:
    def stubborn(answer: str):
        return lambda request: boxed(answer)

    def follower(request: CompletionRequest) -> str:
        own = request.meta.extra.get("own_answer")
        if request.meta.role == "solver":
            return boxed("9")
        if own != "9":
            return boxed(str(own))  # once persuaded, it stays
        others = [c for c in request.meta.candidates if c is not None and c != request.meta.extra["own_answer"]]
        return boxed(others[0])

    collab, models = _collab({"A": stubborn("0.5"), "B": stubborn("1/2"), "C": follower})
    out = await debate(PROBLEM, DebateConfig(models=("A", "B", "C"), rounds=3), collab)
    assert out.details["rounds"] == [["0.5", "1/2", "9"], ["0.5", "1/2", "0.5"], ["0.5", "1/2", "0.5"]]
    assert out.answer == "0.5" and out.details["votes"] == 3
    second = models["C"].requests[1]
    assert second.meta.role == "debater" and second.meta.candidates == ("0.5", "1/2", "9")
    assert second.meta.extra["own_answer"] == "9"
    # the debater continues its own conversation: question, its answer, the others' solutions
    assert [m.role for m in second.messages] == ["user", "assistant", "user"]
    assert "One agent solution" in second.messages[-1].content and "\\boxed{9}" not in second.messages[-1].content
    assert len(models["C"].requests[2].messages) == 5
    assert len({r.sample_index for m in models.values() for r in m.requests}) == 9


async def test_debate_failed_turn_keeps_previous_answer() -> None:
    def flaky(request: CompletionRequest) -> str | Failure:
        return FAIL if request.meta.role == "debater" else boxed("3")

    collab, _ = _collab({"A": flaky, "B": lambda r: boxed("3")})
    out = await debate(PROBLEM, DebateConfig(models=("A", "B"), rounds=2), collab)
    assert out.details["rounds"][-1] == ["3", "3"] and out.answer == "3"


def verifier(approve: set[str]):
    def script(request: CompletionRequest) -> str:
        assert request.meta.role == "verifier" and request.meta.target is not None
        verdict = "CORRECT" if request.meta.target in approve else "INCORRECT"
        return f"Checked.\nVerdict: {verdict}\n"

    return script


async def test_mav_picks_the_most_approved_candidate() -> None:
    collab, models = _collab(
        {
            "P1": answers_by_index("7", "7"),
            "P2": answers_by_index("0.5", None),
            "V1": verifier({"0.5"}),
            "V2": verifier({"0.5", "7"}),
            "V3": lambda r: "I think it is right.",  # no verdict line: abstains
        }
    )
    out = await mav(PROBLEM, MavConfig(proposers=("P1", "P2"), verifiers=("V1", "V2", "V3"), k=2), collab)
    assert out.answer == "0.5" and out.details["approvals"] == 2 and out.details["tie_break"] == "none"
    # 3 answered candidates x 3 verifiers; the candidate without an answer is not verified
    assert len(models["V1"].requests) == 3 and len(_calls(out.trace)) == 4 + 9
    assert {r.sample_index for r in models["V1"].requests} == {0, 1, 2}


async def test_mav_approval_tie_goes_to_the_first_candidate_generated() -> None:
    collab, _ = _collab({"P1": answers_by_index("3", "7"), "P2": answers_by_index("7", "7"), "V": verifier({"7", "3"})})
    out = await mav(PROBLEM, MavConfig(proposers=("P1", "P2"), verifiers=("V",), k=2), collab)
    # all four approved: BoN-MAV's max() keeps the first candidate in generation order
    # (P1's draw 0), even though "7" is shared by three candidates (no vote among answers)
    assert out.answer == "3" and out.details["chosen_model"] == "P1"
    assert out.details["tie_break"] == "generation_order"


async def test_mav_approval_tie_follows_the_proposer_order_not_the_name() -> None:
    collab, _ = _collab({"Zeta": answers_by_index("3"), "Alpha": answers_by_index("7"), "V": verifier({"7", "3"})})
    out = await mav(PROBLEM, MavConfig(proposers=("Zeta", "Alpha"), verifiers=("V",), k=1), collab)
    assert out.answer == "3" and out.details["chosen_model"] == "Zeta"


@pytest.mark.parametrize("kind", ["af", "mav"])
async def test_no_answer_anywhere_is_an_error(kind) -> None:
    collab, _ = _collab({"A": answers_by_index(None, None), "V": verifier(set())})
    if kind == "af":
        out = await agent_forest(PROBLEM, AgentForestConfig(models=("A",), k=2), collab)
    else:
        out = await mav(PROBLEM, MavConfig(proposers=("A",), verifiers=("V",), k=2), collab)
    assert out.final_text is None and out.error is not None and out.error.error == "malformed"
