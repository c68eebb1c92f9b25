r"""Rendering simulated completions as text in the format the prompt asks for.

The text is deliberately short (a line or two of generic reasoning and the final
answer line); the *token counts* reported in ``usage`` are drawn separately from
each card's length statistics. The reasoning sentences contain no digits and no
stand-alone capital letters, so a grader's fallbacks (last number, lone letter) can
never find an answer in them: what the grader extracts is exactly the final line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class Reply:
    """A rendered reply and what it means: the answer it carries (None if none) and its kind."""

    text: str
    answer: str | None
    correct: bool | None
    length_factor: float = 1.0
    finish_reason: str = "stop"


Malformed = Literal["truncated", "no_final", "unclosed_box"]

OPENERS = (
    "Let's work through this step by step.",
    "We start by restating what the problem asks for.",
    "To solve this, we set up the relevant quantities.",
    "First, identify the given information and what is asked.",
)
MIDDLES = (
    "Carrying out the computation carefully gives the result.",
    "Simplifying and checking each step leads to the answer.",
    "Combining these facts yields the final value.",
    "Working through the algebra, everything is consistent.",
)
REVIEW = (
    "Reviewing the candidate answers and the reasoning behind them.",
    "Comparing the proposed solutions with my own work.",
    "Weighing the responses of the other agents against each other.",
)


def final_line(answer_format: str, answer: str) -> str:
    r"""The last line that carries the answer: ``\boxed{}``, ``#### n`` or ``Answer: X``."""
    match answer_format:
        case "gsm8k":
            return f"#### {answer.replace(',', '')}"
        case "letter":
            return f"Answer: {answer}"
    return f"Therefore, the final answer is $\\boxed{{{answer}}}$."


def bare_answer(answer_format: str, answer: str) -> str:
    r"""The answer as written after ``Final Answer:`` in a ReAct reply."""
    match answer_format:
        case "gsm8k":
            return f"#### {answer.replace(',', '')}"
        case "letter":
            return f"Answer: {answer}"
    return f"\\boxed{{{answer}}}"


def pick(options: tuple[str, ...], u: float) -> str:
    """One of ``options`` chosen by a uniform ``u``."""
    return options[min(int(u * len(options)), len(options) - 1)]


def solver_text(answer_format: str, answer: str, u: float, malformed: Malformed | None) -> str:
    """A solution: generic reasoning then the final line, or a malformed reply with no answer."""
    opener = pick(OPENERS, u)
    middle = pick(MIDDLES, (u * 7.0) % 1.0)
    match malformed:
        case "truncated":
            return f"{opener} {middle.split(',')[0]}, and then we"
        case "no_final":
            return f"{opener} {middle} The result follows from the work above."
        case "unclosed_box" if answer_format in ("boxed", "free"):
            return f"{opener} {middle}\nTherefore, the final answer is $\\boxed{{{answer}"
        case "unclosed_box":
            return f"{opener} {middle}"
    return f"{opener} {middle}\n{final_line(answer_format, answer)}"


def review_text(answer_format: str, answer: str, u: float, malformed: Malformed | None) -> str:
    """An aggregator's, judge's or debater's reply: a review sentence and a final answer."""
    if malformed is not None:
        return solver_text(answer_format, answer, u, malformed)
    return f"{pick(REVIEW, u)} {pick(MIDDLES, (u * 5.0) % 1.0)}\n{final_line(answer_format, answer)}"


def verdict_text(correct: bool, u: float) -> str:
    """A verifier's reply ending with the exact verdict line."""
    reason = (
        "Checking the candidate answer against my own derivation, the steps hold up."
        if correct
        else "Checking the candidate answer against my own derivation, something does not hold up."
    )
    return f"{pick(OPENERS, u)} {reason}\nVerdict: {'CORRECT' if correct else 'INCORRECT'}"


def detect_format(prompt: str) -> str:
    """Guess the answer format a prompt asks for (used when the request carries no problem)."""
    if "####" in prompt:
        return "gsm8k"
    if "Answer: X" in prompt or "letter of the correct" in prompt or "(A)" in prompt:
        return "letter"
    return "boxed"
