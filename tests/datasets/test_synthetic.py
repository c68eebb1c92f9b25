"""The synthetic dataset: deterministic per seed, every answer checked by sympy, gradeable."""

from __future__ import annotations

from collections import Counter

import pytest
import sympy

from datasets import load_problems
from datasets.grading import MathGrader
from datasets.synthetic import DEFAULT_COUNT, GENERATORS, Item, generate, recompute, verify
from protocols.config import DatasetSpec


def test_default_is_200_problems_over_all_topics_and_levels() -> None:
    problems = load_problems(DatasetSpec(name="synthetic"))
    assert len(problems) == DEFAULT_COUNT == 200
    assert [p.id for p in problems[:2]] == ["synthetic/0/0", "synthetic/0/1"]
    assert set(Counter(p.domain for p in problems)) == set(GENERATORS)
    assert set(p.level for p in problems) == {1, 2, 3, 4, 5}
    assert all(p.benchmark == "synthetic" and p.answer_format == "boxed" for p in problems)
    assert len({p.question for p in problems}) == len(problems)


def test_deterministic_for_a_seed_and_different_across_seeds() -> None:
    assert generate(7, 50) == generate(7, 50)
    assert [p.question for p in generate(7, 50)] != [p.question for p in generate(8, 50)]
    assert generate(7, 50)[:10] == generate(7, 10)  # a prefix does not depend on the count


def test_limit_beyond_the_default_generates_more() -> None:
    problems = load_problems(DatasetSpec(name="synthetic", offset=190, limit=20, seed=2))
    assert [p.id for p in problems] == [f"synthetic/2/{i}" for i in range(190, 210)]


def test_every_answer_matches_an_independent_sympy_computation() -> None:
    for problem in generate(0, DEFAULT_COUNT):
        expected = recompute(problem.metadata["check"])
        given = [
            sympy.sympify(part.replace("\\frac{", "(").replace("}{", ")/(").replace("}", ")"))
            for part in problem.reference.strip("()").split(",")
        ]
        assert len(given) == len(expected), problem
        assert all(sympy.simplify(g - e) == 0 for g, e in zip(given, expected, strict=True)), problem


def test_verify_rejects_a_wrong_answer() -> None:
    with pytest.raises(AssertionError, match="does not satisfy"):
        verify(Item("Linear equations", "Solve 2x = 4", "3", "Eq(2*x, 4)", 1))
    with pytest.raises(AssertionError):
        verify(Item("Quadratics", "x^2 - 1 = 0", "1", "Eq(x**2 - 1, 0)", 1))  # a root is missing
    with pytest.raises(AssertionError):
        verify(Item("Fractions", "1/2 + 1/3", "\\frac{2}{5}", "(1/2) + (1/3)", 1))
    verify(Item("Systems of equations", "s", "(1, 2)", "[Eq(x + y, 3), Eq(x - y, -1)]", 3))


async def test_references_grade_correct_and_perturbations_do_not() -> None:
    grader = MathGrader()
    for problem in generate(3, 60):
        assert (await grader.grade(problem, f"Work... $\\boxed{{{problem.reference}}}$")).correct, problem
        wrong = problem.reference + "+1"
        assert not (await grader.grade(problem, f"$\\boxed{{{wrong}}}$")).correct, problem
