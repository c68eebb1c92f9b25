"""In-process helpers for the SLM-MUX family's tests: a tiny grader and reply scripts for ``FakeBackend``."""

from __future__ import annotations

import re
from collections.abc import Callable
from fractions import Fraction

from protocols.messages import CompletionRequest, Failure, Grade, Problem

_FRAC = re.compile(r"^\\d?frac\{(-?\d+)\}\{(-?\d+)\}$|^\\frac(\d)(\d)$")


def _value(answer: str) -> Fraction | None:
    text = answer.replace(" ", "").replace("\\dfrac", "\\frac")
    match = _FRAC.match(text)
    if match:
        a, b = (match.group(1), match.group(2)) if match.group(1) else (match.group(3), match.group(4))
        return Fraction(int(a), int(b))
    try:
        return Fraction(text)
    except (ValueError, ZeroDivisionError):
        return None


class FakeGrader:
    """Last ``\\boxed{}`` (no nesting) or ``#### n``; equivalence by exact value, else by string."""

    def __init__(self) -> None:
        self.extract_calls = 0
        self.equivalent_calls = 0

    async def extract(self, problem: Problem, text: str) -> str | None:
        self.extract_calls += 1
        boxed = re.findall(r"\\boxed\{([^{}]*(?:\{[^{}]*\}[^{}]*)*)\}", text)
        if boxed:
            return boxed[-1].strip() or None
        hashes = re.findall(r"####\s*(\S+)", text)
        return hashes[-1] if hashes else None

    async def equivalent(self, problem: Problem, a: str, b: str) -> bool:
        self.equivalent_calls += 1
        va, vb = _value(a), _value(b)
        if va is not None and vb is not None:
            return va == vb
        return a.replace(" ", "") == b.replace(" ", "")

    async def grade(self, problem: Problem, text: str) -> Grade:
        got = await self.extract(problem, text)
        if got is None:
            return Grade(extracted=None, correct=False, reason="no answer")
        return Grade(extracted=got, correct=await self.equivalent(problem, got, problem.reference))


Script = Callable[[CompletionRequest], str | Failure]


def answers_by_index(*answers: str | None) -> Script:
    """Sample i replies ``\\boxed{answers[i]}``; None means a reply with no answer in it."""

    def script(request: CompletionRequest) -> str | Failure:
        answer = answers[request.sample_index]
        return "I could not finish." if answer is None else f"Reasoning... \\boxed{{{answer}}}"

    return script


def boxed(answer: str) -> str:
    return f"Work. So the answer is \\boxed{{{answer}}}"


FAIL = Failure(error="server", message="HTTP 503", retryable=True)

PROBLEM = Problem(
    id="p1", benchmark="math500", question="What is 1/2?", reference="\\frac{1}{2}", answer_format="boxed"
)
