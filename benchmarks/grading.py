r"""Grading throughput: 10,000 distinct model-like answers through the async grader API.

Answers are generated from the real MATH-500 and GSM8K references: the reference as
written, equivalent rewrites (``\dfrac``, decimals, units, ``x =``, thousands separators),
wrong numbers, malformed outputs (no box, unclosed box, empty box) and long reasoning
texts with earlier boxes. They are graded concurrently (bounded) against their references
with a fresh symbolic checker, so its cache starts cold. The last line printed is the
elapsed time and the rate.

Run: ``python -m benchmarks.grading [--count 10000] [--concurrency 64]``
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import time
from collections import Counter
from decimal import Decimal
from fractions import Fraction

from datasets import load_problems
from datasets.grading import Gsm8kGrader, MathGrader, SymbolicChecker
from datasets.grading.math import as_number, normalize
from protocols.config import DatasetSpec
from protocols.messages import Grade, Problem

FILLER = (
    "We first restate the problem and identify what is asked. Then we set up the relevant "
    "quantities, simplify step by step, and double-check each computation before concluding. "
)


def _wrong(ref: str, rng: random.Random, salt: int) -> str:
    digits = [m.start() for m in re.finditer(r"\d", ref)]
    if not digits:
        return f"{ref}+{salt + 1}"
    i = rng.choice(digits)
    new = str((int(ref[i]) + 1 + salt % 8) % 10)
    return ref[:i] + new + ref[i + 1 :]


def _rewrites(ref: str) -> list[str]:
    out = [ref.replace("\\frac", "\\dfrac"), f"{ref} " if "=" in ref else f"x = {ref}", f"{ref} "]
    value = as_number(normalize(ref))
    if value is not None:
        out.append(f"\\frac{{{value.numerator}}}{{{value.denominator}}}")
        if value.denominator in (1, 2, 4, 5, 8, 10, 20, 25, 50, 100):
            out.append(format(Decimal(value.numerator) / Decimal(value.denominator), "f"))
        out.append(f"{ref}\\text{{ units}}")
        if value.denominator == 1 and abs(value) >= 1000:
            out.append(f"{value.numerator:,}")
    if ref.startswith("(") and ref.endswith(")"):
        out.append(f"\\left{ref[0]} {ref[1:-1]} \\right{ref[-1]}")
    return out


def math_answers(problem: Problem, rng: random.Random, per: int) -> list[str]:
    """``per`` distinct completions for a boxed-answer problem: right, rewritten, wrong, malformed, long."""
    ref = problem.reference
    rewrites = _rewrites(ref)
    texts = []
    for k in range(per):
        lead = f"Attempt {k}: {FILLER[: 40 + 7 * k]}"
        match k % 8:
            case 0:
                texts.append(f"{lead} So the answer is $\\boxed{{{ref}}}$.")
            case 1 | 2:
                texts.append(f"{lead} Therefore $\\boxed{{{rewrites[k % len(rewrites)]}}}$.")
            case 3 | 4:
                texts.append(f"{lead} Thus the result is $\\boxed{{{_wrong(ref, rng, k)}}}$.")
            case 5:
                texts.append(
                    rng.choice([f"{lead} The answer is {ref}.", f"{lead} \\boxed{{{ref}", f"{lead} \\boxed{{}}"])
                )
            case 6:
                body = " ".join(f"Step {j}: {FILLER}" for j in range(12))
                texts.append(
                    f"{lead} {body} A first guess was \\boxed{{{_wrong(ref, rng, k)}}}, but rechecking "
                    f"gives $\\boxed{{{ref}}}$."
                )
            case _:
                texts.append(f"{lead} Final: \\fbox{{{rewrites[0]}}}")
    return texts


def gsm8k_answers(problem: Problem, rng: random.Random, per: int) -> list[str]:
    """``per`` distinct GSM8K-style completions: ``####``, prose, thousands separators, wrong, none."""
    ref = Fraction(problem.reference)
    texts = []
    for k in range(per):
        lead = f"Attempt {k}: {FILLER[: 30 + 9 * k]} We have 3 groups and 12 items."
        match k % 5:
            case 0:
                texts.append(f"{lead}\n#### {int(ref):,}")
            case 1:
                texts.append(f"{lead} The answer is ${float(ref):,.2f}.")
            case 2:
                texts.append(f"{lead}\n#### {int(ref) + rng.randint(1, 50)}")
            case 3:
                body = " ".join(f"Step {j}: {FILLER} so far {rng.randint(1, 999)}." for j in range(10))
                texts.append(f"{lead} {body} In total {int(ref)} is what remains.")
            case _:
                texts.append(f"{lead} I could not finish the computation.")
    return texts


async def run(count: int, concurrency: int) -> None:
    """Grade ``count`` answers (half MATH-500, half GSM8K) and print the throughput."""
    rng = random.Random(0)
    math_problems = load_problems(DatasetSpec(name="math500"))
    gsm_problems = load_problems(DatasetSpec(name="gsm8k"))
    jobs: list[tuple[Problem, str]] = []
    per_math = -(-count // 2 // len(math_problems))
    for p in math_problems:
        jobs += [(p, t) for t in math_answers(p, rng, per_math)]
    jobs = jobs[: count // 2]
    per_gsm = -(-(count - len(jobs)) // len(gsm_problems))
    gsm_jobs = [(p, t) for p in gsm_problems for t in gsm8k_answers(p, rng, per_gsm)]
    jobs += gsm_jobs[: count - len(jobs)]
    assert len({(p.id, t) for p, t in jobs}) == len(jobs) == count, "answers must be distinct"

    checker = SymbolicChecker()
    math_grader, gsm_grader = MathGrader(checker), Gsm8kGrader()
    gate = asyncio.Semaphore(concurrency)

    async def grade(problem: Problem, text: str) -> Grade:
        async with gate:
            grader = math_grader if problem.answer_format == "boxed" else gsm_grader
            return await grader.grade(problem, text)

    start = time.perf_counter()
    grades = await asyncio.gather(*(grade(p, t) for p, t in jobs))
    elapsed = time.perf_counter() - start
    checker.close()

    reasons = Counter((g.reason or "correct").split(":")[0].split(" (")[0] for g in grades)
    print(f"graded {len(grades)} answers: {sum(g.correct for g in grades)} correct")
    for reason, n in reasons.most_common():
        print(f"  {n:6d}  {reason}")
    print(f"symbolic checks: {checker.checks}, timeouts: {checker.timeouts}")
    print(f"elapsed {elapsed:.2f} s, {len(grades) / elapsed:.0f} answers/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    asyncio.run(run(args.count, args.concurrency))


if __name__ == "__main__":
    main()
