"""Grading real model output: the local Gemma 3 270M's recorded replies, hand-labelled, and variants of them.

``tests/fixtures/gemma270m_answers/answers.jsonl`` holds what the real model (source: live)
wrote for 26 easy MATH-500 and synthetic problems; ``record.py`` there says how it was
recorded. A base model of 270M parameters writes what a grader meets in practice: no box,
a box cut off by the token limit, the right value in prose and a wrong one boxed, a
fraction as ``1/50``, a single root for a list of two. Each reply's expected extraction and
grade is written here by hand. The variants keep a real reply's wording and change only
what is boxed: an equivalent form of the reference must grade correct, a near miss must not.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from datasets import grader_for
from protocols.messages import Problem

ANSWERS = Path(__file__).resolve().parents[1] / "fixtures" / "gemma270m_answers" / "answers.jsonl"

# problem id -> (what the default grader extracts, whether it is correct), read off each reply by hand.
LABELS: dict[str, tuple[str | None, bool]] = {
    "test/precalculus/1303.json": (None, False),  # "$21$." - no box
    "test/intermediate_algebra/134.json": ("1", False),
    "test/geometry/434.json": (None, False),  # "124 degrees." - no box
    "test/algebra/24.json": ("20", False),  # 2000 asked
    "test/algebra/722.json": ("99", False),
    "test/prealgebra/1747.json": (None, False),  # \boxed{1000...  cut off by max_tokens: no complete box
    "test/prealgebra/192.json": ("72", False),  # "$x=2$" (right) in prose, then \boxed{72}: the last box counts
    "test/intermediate_algebra/431.json": ("4", False),
    "test/number_theory/612.json": ("36", False),
    "test/precalculus/43.json": (None, False),  # "The point is at $(2, -3)$." - no box
    "test/geometry/226.json": (None, False),  # "14 degrees."
    "test/number_theory/466.json": ("1", True),  # the one it gets right
    "test/counting_and_probability/14.json": ("1/50", False),  # 1/4 asked
    "test/counting_and_probability/761.json": ("50", False),
    "synthetic/0/0": ("584", False),
    "synthetic/0/3": ("0.5", False),
    "synthetic/0/4": ("13", False),  # an ordered pair asked
    "synthetic/0/5": ("2", False),  # one root of "-2, 1"
    "synthetic/0/6": ("72", False),
    "synthetic/0/7": ("12", False),
    "synthetic/0/8": ("15", False),
    "synthetic/0/13": ("5", False),
    "synthetic/0/14": ("75", False),
    "synthetic/0/17": ("2", False),
    "synthetic/0/21": ("1", False),
    "synthetic/0/22": ("(-1, 0)", False),
}


def _records() -> list[dict[str, Any]]:
    return [json.loads(line) for line in ANSWERS.read_text().splitlines() if line.strip()]


def _problem(record: dict[str, Any]) -> Problem:
    return Problem(
        id=record["problem_id"],
        benchmark=record["benchmark"],
        question=record["question"],
        reference=record["reference"],
        answer_format=record["answer_format"],
    )


def test_the_fixture_is_real_model_output_and_every_reply_is_labelled() -> None:
    records = _records()
    assert len(records) == 26
    assert {r["source"] for r in records} == {"live"}
    assert all(r["model"].startswith("gemma-3-270m") for r in records)
    assert {r["problem_id"] for r in records} == set(LABELS)


@pytest.mark.parametrize("record", _records(), ids=lambda r: r["problem_id"])
async def test_real_replies_grade_as_labelled(record: dict[str, Any]) -> None:
    grade = await grader_for(record["answer_format"]).grade(_problem(record), record["text"])
    assert (grade.extracted, grade.correct) == LABELS[record["problem_id"]], record["text"]


_LAST_BOX = re.compile(r"\\boxed\{.*\}", re.DOTALL)


def _with_box(text: str, content: str) -> str:
    """A real reply with its final box replaced by ``content`` (or one appended where it had none)."""
    box = f"\\boxed{{{content}}}"
    if _LAST_BOX.search(text) and text.rstrip().endswith(("}", "}.")):
        return _LAST_BOX.sub(lambda _: box, text)
    return f"{text.rstrip()}\nThe answer is {box}."


# (problem id, boxed content written into that problem's real reply, must grade correct)
VARIANTS: list[tuple[str, str, bool]] = [
    # thousands separators and decimals
    ("test/algebra/24.json", "2,000", True),
    ("test/algebra/24.json", "2{,}000", True),
    ("test/algebra/24.json", "2000.0", True),
    ("test/algebra/24.json", "2.000", False),  # a decimal point, not a separator
    ("test/algebra/24.json", "20", False),
    # fractions: \frac12-style, \dfrac, a/b, decimals, percent
    ("test/counting_and_probability/14.json", "\\frac{1}{4}", True),
    ("test/counting_and_probability/14.json", "\\dfrac{1}{4}", True),
    ("test/counting_and_probability/14.json", "1/4", True),
    ("test/counting_and_probability/14.json", "0.25", True),
    ("test/counting_and_probability/14.json", "25\\%", True),
    ("test/counting_and_probability/14.json", "0.2", False),
    ("test/counting_and_probability/14.json", "\\frac{1}{5}", False),
    ("synthetic/0/3", "-\\dfrac{31}{24}", True),
    ("synthetic/0/3", "\\frac{-31}{24}", True),
    ("synthetic/0/3", "-1.29", False),  # an approximation is not the fraction
    ("synthetic/0/3", "\\frac{31}{24}", False),  # the sign
    # money, trailing zeros, mixed numbers, percent problems
    ("synthetic/0/8", "\\$18", True),
    ("synthetic/0/8", "18.00", True),
    ("synthetic/0/8", "18 \\text{ dollars}", True),
    ("synthetic/0/8", "\\$15", False),
    ("synthetic/0/14", "112.50", True),
    ("synthetic/0/14", "\\frac{225}{2}", True),
    ("synthetic/0/14", "112\\frac{1}{2}", True),
    ("synthetic/0/14", "112", False),
    ("synthetic/0/14", "1125", False),
    ("synthetic/0/22", "(4, 4)", True),
    ("synthetic/0/22", "[4, 4]", False),
    # x = 3 vs 3, units, \text{}
    ("test/prealgebra/192.json", "x=2", True),
    ("test/prealgebra/192.json", "2 \\text{ cm}", True),
    ("test/prealgebra/192.json", "\\text{2}", True),
    ("test/prealgebra/192.json", "x = 72", False),
    ("test/prealgebra/192.json", "2x", False),
    # degrees
    ("test/geometry/226.json", "180", True),
    ("test/geometry/226.json", "180^{\\circ}", True),
    ("test/geometry/226.json", "180^\\circ", True),
    ("test/geometry/226.json", "\\pi", False),  # radians are not the degrees asked for
    ("test/geometry/226.json", "18", False),
    # ordered pairs vs lists vs intervals
    ("test/precalculus/43.json", "(15, -29)", True),
    ("test/precalculus/43.json", "\\left(15,-29\\right)", True),
    ("test/precalculus/43.json", "(-29, 15)", False),
    ("test/precalculus/43.json", "[15, -29]", False),
    ("test/precalculus/43.json", "15, -29", False),
    # sets of roots
    ("synthetic/0/5", "1, -2", True),
    ("synthetic/0/5", "x = -2 \\text{ or } x = 1", True),
    ("synthetic/0/5", "\\{-2, 1\\}", True),
    ("synthetic/0/5", "-2", False),
    ("synthetic/0/5", "2, -1", False),
    # radicals and algebra
    ("test/precalculus/1303.json", "\\sqrt{51}", True),
    ("test/precalculus/1303.json", "51^{1/2}", True),
    ("test/precalculus/1303.json", "7.14", False),
    ("test/intermediate_algebra/431.json", "(b+2)(a+5)", True),
    ("test/intermediate_algebra/431.json", "ab+2a+5b+10", True),
    ("test/intermediate_algebra/431.json", "(a+2)(b+5)", False),
]


def test_the_variants_cover_both_verdicts_and_every_kind() -> None:
    assert sum(ok for *_, ok in VARIANTS) >= 20 and sum(not ok for *_, ok in VARIANTS) >= 15
    assert {pid for pid, *_ in VARIANTS} <= set(LABELS)


@pytest.mark.parametrize(("problem_id", "content", "expected"), VARIANTS)
async def test_variants_of_real_replies(problem_id: str, content: str, expected: bool) -> None:
    record = next(r for r in _records() if r["problem_id"] == problem_id)
    text = _with_box(record["text"], content)
    grade = await grader_for(record["answer_format"]).grade(_problem(record), text)
    assert grade.extracted == content, text
    assert grade.correct is expected, (text, record["reference"], grade.reason)
