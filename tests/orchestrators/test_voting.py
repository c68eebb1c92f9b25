"""The pure decision rules on hand-made tables: grouping, majority, confidence, the SLM-MUX choice."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import pytest

from orchestrators.voting import (
    ModelVote,
    Vote,
    break_tie,
    confidence,
    group_answers,
    label_support,
    majority,
    model_vote,
    mux_select,
)
from tests.orchestrators.slm_fakes import PROBLEM, FakeGrader


async def _group(answers: Sequence[str | None]) -> tuple[tuple[int | None, ...], FakeGrader]:
    grader = FakeGrader()

    async def eq(a: str, b: str) -> bool:
        return await grader.equivalent(PROBLEM, a, b)

    groups = await group_answers(answers, eq)
    return groups.labels, grader


@pytest.mark.parametrize(
    ("answers", "labels"),
    [
        (["\\frac{1}{2}", "0.5", "1/2", "\\dfrac12"], (0, 0, 0, 0)),  # equivalent, written differently
        (["3", None, "3", "  "], (0, None, 0, None)),  # None and blank are abstentions
        (["2", "3", "2.0", "x+1"], (0, 1, 0, 2)),
        ([None, None], (None, None)),
        ([], ()),
    ],
)
async def test_group_answers_labels_equivalent_answers_alike(answers, labels) -> None:
    got, _ = await _group(answers)
    assert got == labels


async def test_group_answers_fast_path_skips_the_grader_for_identical_strings() -> None:
    _, grader = await _group(["7"] * 20 + ["8"] * 20)
    assert grader.equivalent_calls == 1  # "8" against the one representative "7"; repeats are free


def V(label, model="A", index=0):
    return Vote(label, model, index)


@pytest.mark.parametrize(
    ("votes", "label", "top", "rule"),
    [
        ([V(0, "A", 0), V(1, "A", 1), V(0, "A", 2)], 0, 2, "none"),
        ([V(None, "A", 0), V(None, "A", 1)], None, 0, "all_invalid"),
        ([], None, 0, "all_invalid"),
        # abstentions never win even when they are the most common "answer"
        ([V(None, "A", 0), V(None, "A", 1), V(3, "A", 2)], 3, 1, "none"),
        # 1-1 tie: more distinct models behind an answer wins
        ([V(0, "A", 0), V(0, "A", 1), V(1, "A", 2), V(1, "B", 0)], 1, 2, "more_models"),
        # same number of models: the earliest draw wins
        ([V(0, "A", 1), V(1, "A", 0)], 1, 1, "earliest_sample"),
        # same draw index in two models: alphabetical model name
        ([V(0, "Zeta", 0), V(1, "Alpha", 0)], 1, 1, "model_name"),
    ],
)
def test_majority_table(votes, label, top, rule) -> None:
    result = majority(votes)
    assert (result.label, result.top, result.tie_break) == (label, top, rule)
    assert result.n == len(votes)


def test_majority_does_not_depend_on_list_order() -> None:
    votes = [V(0, "Zeta", 0), V(1, "Alpha", 0), V(2, "Mid", 1), V(None, "Mid", 0)]
    results = {majority(list(p)).label for p in itertools.permutations(votes)}
    assert results == {1}


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ([0, 0, 0], 1.0),
        ([0, 0, None], 2 / 3),  # an abstention counts in k
        ([0, 1, 2], 1 / 3),
        ([None, None, None], 0.0),
        ([], 0.0),
        ([1, None, 1, 0, None], 2 / 5),
    ],
)
def test_confidence_counts_abstentions_in_k(labels, expected) -> None:
    assert confidence(labels) == pytest.approx(expected)


def test_model_vote_reports_the_first_draw_of_the_top_answer() -> None:
    vote = model_vote("A", [None, 2, 1, 2])
    assert (vote.label, vote.top, vote.k, vote.first_index) == (2, 2, 4, 1)
    assert vote.confidence == 0.5
    tie = model_vote("A", [1, 0, 2])  # within-model 1-1-1 tie: the earliest draw is offered
    assert (tie.label, tie.first_index) == (1, 0)


def MV(model, label, top, k=3):
    return ModelVote(model, label, top, k)


VAL = {"Gemma": 0.62, "Llama": 0.50, "Mixtral": 0.34}


@pytest.mark.parametrize(
    ("votes", "val", "support", "model", "label", "rule"),
    [
        # the most confident model wins even against a better-validated one
        ([MV("Gemma", 0, 2), MV("Mixtral", 1, 3)], VAL, None, "Mixtral", 1, "none"),
        # a confidence tie goes to the higher validation accuracy
        ([MV("Llama", 1, 2), MV("Gemma", 0, 2)], VAL, None, "Gemma", 0, "validation_accuracy"),
        # a model without a validation figure ranks below one with a figure
        ([MV("Unknown", 1, 2), MV("Mixtral", 0, 2)], VAL, None, "Mixtral", 0, "validation_accuracy"),
        # equal validation accuracy: the answer with more support across all models
        ([MV("A", 0, 2), MV("B", 1, 2)], {"A": 0.5, "B": 0.5}, {0: 2, 1: 4}, "B", 1, "cross_model_support"),
        # nothing else differs: alphabetical model name, never config order
        ([MV("Zed", 0, 1), MV("Abe", 1, 1)], {}, {0: 1, 1: 1}, "Abe", 1, "model_name"),
        # all invalid: nobody answers
        ([MV("A", None, 0), MV("B", None, 0)], VAL, None, None, None, "all_invalid"),
        # an all-invalid model cannot win, a 1/3 model can
        ([MV("Gemma", None, 0), MV("Mixtral", 2, 1)], VAL, None, "Mixtral", 2, "none"),
        # abstentions lower confidence: 2 of 5 valid-and-agreeing loses to 3 of 5
        ([MV("Gemma", 0, 2, 5), MV("Llama", 1, 3, 5)], VAL, None, "Llama", 1, "none"),
    ],
)
def test_mux_select_table(votes, val, support, model, label, rule) -> None:
    choice = mux_select(votes, val, support)
    assert (choice.model, choice.label, choice.tie_break) == (model, label, rule)


def test_mux_select_does_not_depend_on_list_order() -> None:
    votes = [MV("Zed", 0, 2), MV("Abe", 1, 2), MV("Mid", 2, 1)]
    for perm in itertools.permutations(votes):
        choice = mux_select(list(perm), {}, {0: 2, 1: 2, 2: 1})
        assert choice.model == "Abe"
        assert choice.tied_models == ("Abe", "Zed")


def test_label_support_and_break_tie_errors_on_a_non_total_rule() -> None:
    assert label_support([0, None, 0, 1]) == {0: 2, 1: 1}
    with pytest.raises(ValueError, match="tie rules left 2"):
        break_tie([1, 1], [("same", lambda x: 0)])
