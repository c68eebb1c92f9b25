"""GSM8K number extraction (strict and flexible) and letter extraction (references: test_reference_variants)."""

from __future__ import annotations

import pytest

from datasets.grading import LetterGrader, grader_for, gsm8k, letter
from protocols.messages import Problem

# (text, flexible, strict)
GSM8K_CASES: list[tuple[str, str | None, str | None]] = [
    ("She makes 9 * 2 = $<<9*2=18>>18.\n#### 18", "18", "18"),
    ("#### 1,450,000", "1450000", "1450000"),
    ("The temperature drops to\n#### -10", "-10", "-10"),
    ("#### 18.00", "18", "18"),
    ("#### $42", "42", "42"),
    ("The answer is 1,234.", "1234", "1234"),
    ("So the final answer is: $1,234.50", "1234.5", "1234.5"),
    ("#### 5\nThen someone wrote 7 more.", "5", "5"),
    ("First 12 apples, then 3 more, total 15 apples.", "15", None),
    ("He has -3 dollars left", "-3", None),
    ("It costs 2.50 each", "2.5", None),
    (r"Thus the result is \boxed{72}.", "72", None),
    (r"\boxed{1{,}024} and then 3 checks", "1024", None),
    ("In 2023 he had 3 dogs and 4 cats; 7 pets.", "7", None),
    ("I cannot solve this.", None, None),
    ("", None, None),
    ("The answer is 3/4 of the pie so 6 slices", "6", None),
]


@pytest.mark.parametrize(("text", "flexible", "strict"), GSM8K_CASES)
def test_gsm8k_extract(text: str, flexible: str | None, strict: str | None) -> None:
    assert gsm8k.extract(text, "flexible") == flexible
    assert gsm8k.extract(text, "strict") == strict


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [("18", "18.0", True), ("1,234", "1234", True), ("-10", "10", False), ("0.5", ".5", True), ("3", "4", False)],
)
def test_gsm8k_numeric_equivalence(a: str, b: str, equal: bool) -> None:
    assert gsm8k.is_equiv(a, b) is equal


async def test_gsm8k_grade_reasons() -> None:
    problem = Problem(id="g", benchmark="gsm8k", question="q", reference="18", answer_format="gsm8k")
    strict = grader_for("gsm8k", strict=True)
    flexible = grader_for("gsm8k")
    assert (await flexible.grade(problem, "so it is 18 dollars")).correct
    none = await strict.grade(problem, "so it is 18 dollars")
    assert (none.correct, none.reason) == (False, "no '#### n' or 'The answer is n' found")
    wrong = await flexible.grade(problem, "#### 17")
    assert (wrong.extracted, wrong.reason) == ("17", "not equivalent: 17 vs 18")


LETTER_CASES: list[tuple[str, str | None]] = [
    ("Answer: C", "C"),
    ("**Answer:** B", "B"),
    ("**Answer: D**", "D"),
    ("Final Answer: (A)", "A"),
    ("ANSWER: b", None),  # lower-case letters are not choices
    ("The answer is (D).", "D"),
    ("Therefore, the correct answer is B.", "B"),
    ("Hence the correct answer is option B.", "B"),
    ("the answer is: **C**", "C"),
    (r"Final answer: $\boxed{B}$", "B"),
    (r"\boxed{\text{(C)}}", "C"),
    ("Answer: A is the only stable isomer.", "A"),
    ("Reasoning...\n(C)", "C"),
    ("Reasoning...\n**B.**", "B"),
    ("A", "A"),
    ("Answer: B\n\nOn reflection, Answer: D", "D"),
    # prose that must not yield a letter
    ("Let us check answer choice C first.", None),
    ("Option A and option B both look plausible.", None),
    ("The answer is either A or B.", None),
    ("A good approach is to consider each option.", None),
    ("Answer: A good approach is to compare energies.", None),
    ("I think the answer is C and D.", None),
    ("Choice D is wrong because of charge.", None),
    ("We apply Newton's law. C is the speed of light.", None),
    ("Answer: E", None),
    ("Answer: (A) or (B)", None),
    ("Answer: A/B", None),
    ("The answer is B, C", None),
    ("", None),
]


@pytest.mark.parametrize(("text", "expected"), LETTER_CASES)
def test_letter_extract(text: str, expected: str | None) -> None:
    assert letter.extract(text) == expected


async def test_letter_grader_uses_the_number_of_choices() -> None:
    five = Problem(
        id="p", benchmark="gpqa", question="q", reference="E", answer_format="letter", choices=("1", "2", "3", "4", "5")
    )
    grader = LetterGrader()
    assert (await grader.grade(five, "Answer: E")).correct
    four = five.model_copy(update={"choices": ("1", "2", "3", "4"), "reference": "B"})
    miss = await grader.grade(four, "Answer: E")
    assert (miss.extracted, miss.reason) == (None, "no 'Answer: X' letter found")
    wrong = await grader.grade(four, "Answer: C")
    assert (wrong.extracted, wrong.correct, wrong.reason) == ("C", False, "not equivalent: C vs B")
    assert await grader.equivalent(four, "(B)", "b")


async def test_free_text_grader_and_unknown_format() -> None:
    problem = Problem(id="f", benchmark="x", question="q", reference="Paris", answer_format="free")
    grader = grader_for("free")
    assert (await grader.grade(problem, "  paris. ")).correct
    assert not (await grader.grade(problem, "Lyon")).correct
    with pytest.raises(ValueError, match="'nope'"):
        grader_for("nope")
