"""Equivalence on the real references: every MATH-500 and GSM8K answer rewritten, and perturbed.

Grading a dataset's own solutions against its own answers proves little: every MATH-500
solution's last ``\\boxed{}`` is the ``answer`` field as a string, and a GSM8K reference is
read from the very line being graded. Here each real reference is written another way a
model would write it (``\\dfrac``, ``a/b``, a terminating decimal, ``x = n``, units,
``\\text{}``, thousands separators, ``$``, trailing zeros), which must grade correct, and
changed in value (a digit, a sign, a factor of ten, plus one), which must not.
"""

from __future__ import annotations

import asyncio
import json
import re
from decimal import Decimal
from pathlib import Path

from datasets.grading import Gsm8kGrader, MathGrader
from protocols.messages import Problem

_INT = re.compile(r"-?\d+")
_FRAC = re.compile(r"(-?)\\[dt]?frac\{(\d+)\}\{(\d+)\}")
_BASE = re.compile(r"(\d+)_\{?(\d+)\}?")


def math_variants(reference: str) -> tuple[list[str], list[str]]:
    """(equivalent rewrites, non-equivalent perturbations) of one MATH answer."""
    same: list[str] = []
    other: list[str] = []
    if "\\frac" in reference:
        same.append(reference.replace("\\frac", "\\dfrac"))
    if _INT.fullmatch(reference):
        n = int(reference)
        same += [f"{n}.0", f"x = {n}", f"{n}\\text{{ units}}", f"\\text{{{n}}}"]
        if abs(n) >= 1000:
            same.append(f"{n:,}")
        if n:
            other += [str(10 * n), str(-n)]
    match = _FRAC.fullmatch(reference)
    if match:
        sign, num, den = match.groups()
        same.append(f"{sign}{num}/{den}")
        rest = int(den)
        for p in (2, 5):
            while rest % p == 0:
                rest //= p
        if rest == 1:  # terminates: 1/4 -> 0.25
            same.append(format(Decimal(f"{sign}{num}") / Decimal(den), "f"))
    based = _BASE.fullmatch(reference)
    if based:  # 52_8: the same digits in another base are another number
        digits_, base = based.groups()
        same += [f"{digits_}_{{{base}}}", digits_]
        other.append(f"{digits_}_{int(base) + 1}")
    digits = [i for i, ch in enumerate(reference) if ch.isdigit()]
    if digits:  # the first digit changes the value; a last digit may be a unit's exponent
        i = digits[0]
        other.append(reference[:i] + str((int(reference[i]) + 1) % 10) + reference[i + 1 :])
    return same, other


def _boxed(answer: str) -> str:
    return f"Putting it together, the answer is $\\boxed{{{answer}}}$."


async def test_math500_references_rewritten_grade_correct_and_perturbed_do_not(shared_datasets: Path) -> None:
    grader = MathGrader()
    rows = [json.loads(line) for line in (shared_datasets / "math500" / "test.jsonl").read_text().splitlines()]
    assert len(rows) == 500
    cases = []
    for row in rows:
        problem = Problem(
            id=row["unique_id"], benchmark="math500", question="q", reference=row["answer"], answer_format="boxed"
        )
        same, other = math_variants(row["answer"])
        cases += [(problem, text, True) for text in same] + [(problem, text, False) for text in other]

    async def wrong(case: tuple[Problem, str, bool]) -> tuple[str, str, bool] | None:
        problem, text, expected = case
        grade = await grader.grade(problem, _boxed(text))
        return None if grade.correct is expected else (problem.reference, text, expected)

    # Concurrently, so the grader's symbolic worker processes are all kept busy.
    verdicts = await asyncio.gather(*(wrong(case) for case in cases))
    kinds = len(cases)
    missed = [v for v in verdicts if v is not None and v[2]]
    accepted = [v for v in verdicts if v is not None and not v[2]]
    assert kinds > 2000  # most references get several rewrites and perturbations
    assert missed == []
    assert accepted == []


def gsm8k_variants(reference: str) -> tuple[list[str], list[str]]:
    """(texts that state the reference, texts that state another number) for one GSM8K answer."""
    value = Decimal(reference)
    same = [f"#### {reference}", f"So the answer is ${reference}.", f"The answer is {reference}.\n#### {reference}"]
    if value == value.to_integral_value():
        same.append(f"#### {int(value)}.00")
        if abs(value) >= 1000:
            same += [f"#### {int(value):,}", f"The answer is ${int(value):,}."]
    other = [f"#### {value + 1}", f"The answer is {value - 1}."]
    if value:
        other += [f"#### {value * 10}", f"#### {-value}"]
    return same, other


async def test_gsm8k_references_restated_grade_correct_and_others_do_not(shared_datasets: Path) -> None:
    from datasets.grading.gsm8k import reference_answer

    lines = (shared_datasets / "gsm8k" / "test.jsonl").read_text().splitlines()
    assert len(lines) == 1319
    graders = (Gsm8kGrader("strict"), Gsm8kGrader("flexible"))
    missed, accepted = [], []
    for i, line in enumerate(lines):
        reference = reference_answer(json.loads(line)["answer"])
        problem = Problem(id=str(i), benchmark="gsm8k", question="q", reference=reference, answer_format="gsm8k")
        same, other = gsm8k_variants(reference)
        for grader in graders:
            for text in same:
                if not (await grader.grade(problem, text)).correct:
                    missed.append((reference, grader.mode, text))
            for text in other:
                if (await grader.grade(problem, text)).correct:
                    accepted.append((reference, grader.mode, text))
    assert missed == []
    assert accepted == []
