"""Wrong-answer generation and the simulator's cheap answer comparison."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from actors.backends.sim.answers import as_number, normalize, same_answer, wrong_candidates
from datasets.grading.gsm8k import is_equiv as gsm8k_equiv
from datasets.grading.math import fast_equiv
from datasets.gsm8k import load_gsm8k
from datasets.math500 import load_math500


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("12", Fraction(12)),
        ("-3", Fraction(-3)),
        ("1,450,000", Fraction(1450000)),
        ("0.5", Fraction(1, 2)),
        ("\\frac{3}{4}", Fraction(3, 4)),
        ("\\dfrac{3}{4}", Fraction(3, 4)),
        ("-\\frac{1}{2}", Fraction(-1, 2)),
        ("\\frac14", Fraction(1, 4)),
        ("3/4", Fraction(3, 4)),
        ("x+1", None),
        ("\\frac{1}{0}", None),
    ],
)
def test_as_number(text: str, value: Fraction | None) -> None:
    assert as_number(text) == value


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("0.5", "\\frac{1}{2}", True),
        ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\frac{\\pi}{2})", True),
        ("\\text{(C)}", "(C)", True),
        ("18", "18.0", True),
        ("18", "19", False),
        ("p - q", "p-q", True),
        ("p - q", "p+q", False),
        (None, "1", False),
    ],
)
def test_same_answer(a: str | None, b: str, same: bool) -> None:
    assert same_answer(a, b) is same
    assert normalize(b) == normalize(b)


@pytest.mark.parametrize(
    ("reference", "fmt"),
    [
        ("18", "gsm8k"),
        ("-10", "gsm8k"),
        ("\\frac{3}{4}", "boxed"),
        ("0.25", "boxed"),
        ("p - q", "boxed"),
        ("B", "letter"),
    ],
)
def test_wrong_candidates_are_distinct_and_wrong(reference: str, fmt: str) -> None:
    wrong = wrong_candidates(reference, fmt, ("t", reference))
    assert len(wrong) >= 3
    assert len(set(wrong)) == len(wrong)
    assert not any(same_answer(w, reference) for w in wrong)
    assert wrong == wrong_candidates(reference, fmt, ("t", reference))  # deterministic


def test_letter_wrong_answers_are_the_other_choices() -> None:
    assert sorted(wrong_candidates("C", "letter", ("k",), choices=4)) == ["A", "B", "D"]


def test_gsm8k_intermediate_results_are_candidates() -> None:
    solution = "He sprints 3*3=<<3*3=9>>9 times\nSo he runs 9*60=<<9*60=540>>540 meters\n#### 540"
    assert "9" in wrong_candidates("540", "gsm8k", ("k",), solution=solution)


def test_no_wrong_answer_is_graded_right_on_real_data(shared_datasets: Path) -> None:
    """Every wrong candidate of every MATH-500 and GSM8K problem is non-equivalent for the real graders."""
    for p in load_math500(shared_datasets / "math500" / "test.jsonl"):
        for w in wrong_candidates(p.reference, "boxed", ("wrong", p.id), solution=p.metadata["solution"]):
            # fast_equiv decides almost all; an undecided (None) pair is not counted as equal here.
            assert fast_equiv(p.reference, w) is not True, (p.id, p.reference, w)
    for p in load_gsm8k(shared_datasets / "gsm8k" / "test.jsonl", "test"):
        for w in wrong_candidates(p.reference, "gsm8k", ("wrong", p.id), solution=p.metadata["solution"]):
            assert not gsm8k_equiv(p.reference, w), (p.id, p.reference, w)


def test_no_scattered_answer_is_graded_right_on_real_data(shared_datasets: Path) -> None:
    """What lost models say is wrong for the real graders, and GSM8K ones stay plain numbers."""
    from actors.backends.sim.answers import scatter_answer

    for p in load_math500(shared_datasets / "math500" / "test.jsonl"):
        for j in range(40):
            w = scatter_answer(p.reference, "boxed", ("scatter", p.id), j)
            assert fast_equiv(p.reference, w) is not True, (p.id, p.reference, w)
    for p in load_gsm8k(shared_datasets / "gsm8k" / "test.jsonl", "test")[:200]:
        for j in range(40):
            w = scatter_answer(p.reference, "gsm8k", ("scatter", p.id), j)
            assert as_number(w) is not None and not gsm8k_equiv(p.reference, w), (p.id, p.reference, w)
