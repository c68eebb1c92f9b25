"""The async graders (``protocols.interfaces.Grader``) built from the pure extraction functions.

Fast work (regexes, normal forms, exact numbers) runs inline: it takes microseconds.
Only an undecided MATH comparison goes to the ``SymbolicChecker`` worker pool, with a
timeout and a cache, so the event loop never blocks on sympy.
"""

from __future__ import annotations

from typing import Literal

from datasets.grading import gsm8k, letter
from datasets.grading import math as mathans
from datasets.grading.symbolic import SymbolicChecker
from protocols.messages import Grade, Problem

_shared_checker: SymbolicChecker | None = None


def shared_checker() -> SymbolicChecker:
    """The process-wide symbolic checker (one small pool per process, created on first use)."""
    global _shared_checker
    if _shared_checker is None:
        _shared_checker = SymbolicChecker()
    return _shared_checker


class MathGrader:
    r"""Grades ``\boxed{}`` answers (MATH-500, synthetic) by mathematical equivalence.

    ``strict`` (the default) reads only the last ``\boxed{}``; ``flexible`` falls back to
    "The final answer is $X$" / "The answer is X" when there is no box.
    """

    def __init__(self, checker: SymbolicChecker | None = None, mode: Literal["strict", "flexible"] = "strict") -> None:
        self.checker = checker
        self.mode: Literal["strict", "flexible"] = mode

    def _extract(self, text: str) -> str | None:
        return mathans.extract_boxed(text) if self.mode == "strict" else mathans.extract_final_answer(text)

    async def extract(self, problem: Problem, text: str) -> str | None:
        return self._extract(text)

    async def compare(self, reference: str, answer: str) -> tuple[bool, str | None]:
        """(equivalent, why not) for a reference and an extracted answer."""
        verdict = mathans.fast_equiv(reference, answer)
        if verdict is not None:
            return verdict, None if verdict else f"not equivalent: {answer} vs {reference}"
        checker = self.checker or shared_checker()
        result = await checker.check(mathans.normalize(reference), mathans.normalize(answer))
        match result.verdict:
            case "equal":
                return True, None
            case "different":
                return False, f"not equivalent: {answer} vs {reference}"
            case "timeout":
                return False, f"grading timed out ({result.detail})"
            case _:
                return False, f"not equivalent: {answer} vs {reference} ({result.detail})"

    async def equivalent(self, problem: Problem, a: str, b: str) -> bool:
        return (await self.compare(a, b))[0]

    async def grade(self, problem: Problem, text: str) -> Grade:
        extracted = self._extract(text)
        if extracted is None:
            why = "no \\boxed{} found" if self.mode == "strict" else "no \\boxed{} or 'The answer is X' found"
            return Grade(extracted=None, correct=False, reason=why)
        if not extracted.strip():
            return Grade(extracted=extracted, correct=False, reason="empty \\boxed{}")
        correct, reason = await self.compare(problem.reference, extracted)
        return Grade(extracted=extracted, correct=correct, reason=reason)


class Gsm8kGrader:
    """Grades GSM8K answers by exact numeric value; ``strict`` needs ``#### n`` or "The answer is n"."""

    def __init__(self, mode: gsm8k.Mode = "flexible") -> None:
        self.mode: gsm8k.Mode = mode

    async def extract(self, problem: Problem, text: str) -> str | None:
        return gsm8k.extract(text, self.mode)

    async def equivalent(self, problem: Problem, a: str, b: str) -> bool:
        return gsm8k.is_equiv(a, b)

    async def grade(self, problem: Problem, text: str) -> Grade:
        extracted = gsm8k.extract(text, self.mode)
        if extracted is None:
            why = "no '#### n' or 'The answer is n' found" if self.mode == "strict" else "no number found"
            return Grade(extracted=None, correct=False, reason=why)
        if gsm8k.is_equiv(problem.reference, extracted):
            return Grade(extracted=extracted, correct=True)
        return Grade(extracted=extracted, correct=False, reason=f"not equivalent: {extracted} vs {problem.reference}")


class LetterGrader:
    """Grades multiple-choice letters (GPQA) anchored on ``Answer: X``."""

    @staticmethod
    def letters(problem: Problem) -> str:
        """The valid letters for ``problem``: one per choice, A-D when it lists none."""
        count = len(problem.choices) or 4
        return "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[:count]

    async def extract(self, problem: Problem, text: str) -> str | None:
        return letter.extract(text, self.letters(problem))

    async def equivalent(self, problem: Problem, a: str, b: str) -> bool:
        return a.strip().strip("()").upper() == b.strip().strip("()").upper()

    async def grade(self, problem: Problem, text: str) -> Grade:
        extracted = letter.extract(text, self.letters(problem))
        if extracted is None:
            return Grade(extracted=None, correct=False, reason="no 'Answer: X' letter found")
        if extracted == problem.reference.strip().upper():
            return Grade(extracted=extracted, correct=True)
        return Grade(extracted=extracted, correct=False, reason=f"not equivalent: {extracted} vs {problem.reference}")


def _plain(text: str) -> str:
    return " ".join(text.split()).strip(" .").casefold()


class FreeTextGrader:
    """Grades free-form answers by exact text after trimming, collapsing spaces and case-folding."""

    async def extract(self, problem: Problem, text: str) -> str | None:
        return text.strip() or None

    async def equivalent(self, problem: Problem, a: str, b: str) -> bool:
        return _plain(a) == _plain(b)

    async def grade(self, problem: Problem, text: str) -> Grade:
        extracted = text.strip() or None
        if extracted is None:
            return Grade(extracted=None, correct=False, reason="empty answer")
        if _plain(extracted) == _plain(problem.reference):
            return Grade(extracted=extracted, correct=True)
        return Grade(extracted=extracted, correct=False, reason=f"not equivalent: {extracted} vs {problem.reference}")


def grader_for(
    answer_format: str, *, strict: bool | None = None, checker: SymbolicChecker | None = None
) -> MathGrader | Gsm8kGrader | LetterGrader | FreeTextGrader:
    """The grader for an answer format: ``boxed``, ``gsm8k`` (``strict`` or flexible), ``letter`` or ``free``.

    ``strict=None`` picks the format's usual variant: the last ``\\boxed{}`` only for ``boxed``
    (pass ``strict=False`` for the "The answer is X" fallback), flexible for ``gsm8k``
    (pass ``strict=True`` to require ``#### n``). ``checker`` replaces the shared symbolic
    worker pool (e.g. with another timeout).
    """
    match answer_format:
        case "boxed":
            return MathGrader(checker, "flexible" if strict is False else "strict")
        case "gsm8k":
            return Gsm8kGrader("strict" if strict is True else "flexible")
        case "letter":
            return LetterGrader()
        case "free":
            return FreeTextGrader()
    raise ValueError(f"no grader for answer format {answer_format!r}; known: boxed, gsm8k, letter, free")
