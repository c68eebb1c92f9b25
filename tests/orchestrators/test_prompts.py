"""Prompt templates and the parsers beside them."""

from __future__ import annotations

import pytest

from orchestrators.prompts import few_shot_prompt, parse_verdict, solver_messages
from protocols.messages import Problem


@pytest.mark.parametrize(
    ("text", "verdict"),
    [
        ("Looks fine.\nVerdict: CORRECT", "correct"),
        ("Step 2 is wrong.\nVerdict: INCORRECT\n\n", "incorrect"),
        ("  Verdict: CORRECT  ", "correct"),
        ("Verdict: CORRECT\nActually, wait.", None),  # not the last line
        ("Verdict: correct", None),  # not exactly the template
        ("Verdict: CORRECT.", None),
        ("**Verdict: CORRECT**", None),
        ("The verdict is CORRECT", None),
        ("", None),
    ],
)
def test_parse_verdict_reads_exactly_the_last_line(text, verdict) -> None:
    assert parse_verdict(text) == verdict


@pytest.mark.parametrize(
    ("fmt", "needle"), [("boxed", "\\boxed{}"), ("gsm8k", "#### <number>"), ("letter", "Answer: X")]
)
def test_solver_prompt_asks_for_the_answer_format(fmt, needle) -> None:
    problem = Problem(id="x", benchmark="b", question="Q?", reference="1", answer_format=fmt)
    (message,) = solver_messages(problem)
    assert message.content.startswith("Q?") and needle in message.content


def test_few_shot_prompt_renders_the_format_and_rejects_letters() -> None:
    boxed = Problem(id="x", benchmark="math500", question="Q?", reference="1", answer_format="boxed")
    assert few_shot_prompt(boxed, 2).count("\\boxed{") == 2
    letter = boxed.model_copy(update={"answer_format": "letter"})
    with pytest.raises(ValueError, match="'letter'"):
        few_shot_prompt(letter, 2)
    with pytest.raises(ValueError, match="shots=99"):
        few_shot_prompt(boxed, 99)
