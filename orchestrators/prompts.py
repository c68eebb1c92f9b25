"""Prompt templates of the SLM-MUX family of orchestrators, with the parser of each reply beside it.

Prompts are data: named constants rendered by small functions. The simulator does not
read these texts (it reads ``RequestMeta``); live models do, so the wording follows the
published methods (Du et al. for debate, Wang et al. for Mixture-of-Agents, Lifshitz et
al. for Multi-Agent Verification).
"""

from __future__ import annotations

from typing import Literal, NamedTuple

from protocols.messages import AnswerFormat, ChatMessage, Problem

# --- solver ------------------------------------------------------------------

FORMAT_INSTRUCTIONS: dict[AnswerFormat, str] = {
    "boxed": "Solve the problem step by step, then put your final answer within \\boxed{}.",
    "gsm8k": (
        "Solve the problem step by step, then end your reply with a line of the form "
        "'#### <number>' giving only the final numeric answer."
    ),
    "letter": (
        "Think step by step, then end your reply with a line of the form 'Answer: X', "
        "where X is the letter of the correct choice."
    ),
    # Free-form answers are graded like MATH answers, so ask for a box.
    "free": "Solve the problem step by step, then put your final answer within \\boxed{}.",
}

FORMAT_HINTS: dict[AnswerFormat, str] = {
    "boxed": "Put the final answer within \\boxed{}.",
    "gsm8k": "End with a line '#### <number>'.",
    "letter": "End with a line 'Answer: X' where X is the letter of the correct choice.",
    "free": "State the final answer clearly at the end.",
}
"""The one-line form, for prompts that say how to reason elsewhere (a ReAct agent's Final Answer, a model
asked as a tool). Both tables live here so a new answer format is added in one place."""

SOLVER_TEMPLATE = "{question}\n\n{instruction}"


def format_instruction(problem: Problem) -> str:
    """The sentence telling a model how to write its final answer for this problem's format."""
    return FORMAT_INSTRUCTIONS[problem.answer_format]


def solver_messages(problem: Problem) -> tuple[ChatMessage, ...]:
    """Chat messages asking a model to solve ``problem`` in its answer format."""
    content = SOLVER_TEMPLATE.format(question=problem.question, instruction=format_instruction(problem))
    return (ChatMessage(role="user", content=content),)


# --- few-shot completions prompt (base models) --------------------------------


class Shot(NamedTuple):
    """One worked example of the few-shot prompt."""

    question: str
    reasoning: str
    answer: str


FEW_SHOT_EXEMPLARS: tuple[Shot, ...] = (
    Shot(
        "Tom has 3 boxes with 12 pencils in each box. He gives away 10 pencils. How many pencils does he have left?",
        "He starts with 3 * 12 = 36 pencils. After giving away 10 he has 36 - 10 = 26.",
        "26",
    ),
    Shot(
        "A shirt costs $20 and is on sale for 25% off. What is the sale price in dollars?",
        "The discount is 20 * 0.25 = 5 dollars, so the price is 20 - 5 = 15.",
        "15",
    ),
    Shot(
        "Sara reads 15 pages a day. How many days does she need to read a 120-page book?",
        "She needs 120 / 15 = 8 days.",
        "8",
    ),
    Shot(
        "A farmer has 7 cows and twice as many sheep. How many animals does he have in total?",
        "He has 7 * 2 = 14 sheep, so 7 + 14 = 21 animals.",
        "21",
    ),
    Shot(
        "Mike earns $12 an hour and works 6 hours a day for 5 days. How much does he earn?",
        "Per day he earns 12 * 6 = 72 dollars; in 5 days 72 * 5 = 360.",
        "360",
    ),
    Shot(
        "There are 30 students and 2/5 of them wear glasses. How many students do not wear glasses?",
        "2/5 of 30 is 12, so 30 - 12 = 18 do not wear glasses.",
        "18",
    ),
    Shot(
        "A train travels 60 miles per hour for 2.5 hours. How far does it go in miles?",
        "Distance is 60 * 2.5 = 150 miles.",
        "150",
    ),
    Shot(
        "Anna had 50 stickers. She bought 18 more and then used 23. How many stickers does she have?",
        "She has 50 + 18 = 68, then 68 - 23 = 45.",
        "45",
    ),
)

FEW_SHOT_STOP: tuple[str, ...] = ("\n\nQuestion:", "\nQuestion:")
"""Stop sequences: a base model otherwise goes on inventing the next exemplar."""


def _final_line(answer_format: AnswerFormat, answer: str) -> str:
    match answer_format:
        case "gsm8k":
            return f"#### {answer}"
        case "boxed" | "free":
            return f"The answer is \\boxed{{{answer}}}."
    raise ValueError(f"few-shot prompts support boxed and gsm8k answers, not {answer_format!r}")


def few_shot_prompt(problem: Problem, shots: int = 4) -> str:
    """A plain completions prompt: ``shots`` worked examples, then the question and ``Answer:``."""
    if not 0 <= shots <= len(FEW_SHOT_EXEMPLARS):
        raise ValueError(f"shots={shots} out of range 0..{len(FEW_SHOT_EXEMPLARS)}")
    blocks = [
        f"Question: {s.question}\nAnswer: {s.reasoning}\n{_final_line(problem.answer_format, s.answer)}"
        for s in FEW_SHOT_EXEMPLARS[:shots]
    ]
    blocks.append(f"Question: {problem.question}\nAnswer:")
    return "\n\n".join(blocks)


# --- Mixture-of-Agents aggregator ----------------------------------------------

AGGREGATOR_TEMPLATE = (
    "You have been provided with a set of responses from various models to the problem below. "
    "Your task is to synthesize these responses into a single, high-quality answer. Critically "
    "evaluate the information provided, recognizing that some of it may be biased or incorrect; "
    "do not simply copy the responses, and do not follow a majority that is wrong.\n\n"
    "Problem:\n{question}\n\nResponses from models:\n{responses}\n\n{instruction}"
)


def _numbered(texts: list[str]) -> str:
    return "\n\n".join(f"{i}. {t.strip()}" for i, t in enumerate(texts, start=1))


def aggregator_messages(problem: Problem, responses: list[str]) -> tuple[ChatMessage, ...]:
    """The MoA aggregator's (or a later MoA layer's) prompt over the previous layer's responses."""
    content = AGGREGATOR_TEMPLATE.format(
        question=problem.question,
        responses=_numbered(responses) if responses else "(none of the models produced a response)",
        instruction=format_instruction(problem),
    )
    return (ChatMessage(role="user", content=content),)


# --- LLM-Debate ----------------------------------------------------------------

DEBATE_TEMPLATE = (
    "These are the solutions to the problem from the other agents:\n\n{others}\n\n"
    "Using the reasoning from the other agents as additional advice, examine your solution and "
    "theirs step by step and give an updated answer. {instruction}"
)


def debate_followup(problem: Problem, others: list[str]) -> ChatMessage:
    """The user turn that shows a debater the other agents' previous-round solutions."""
    body = "\n\n".join(f"One agent solution: ```{t.strip()}```" for t in others) or "(no other solutions)"
    return ChatMessage(
        role="user", content=DEBATE_TEMPLATE.format(others=body, instruction=format_instruction(problem))
    )


# --- Multi-Agent Verification ----------------------------------------------------

VERIFIER_TEMPLATE = (
    "You are checking a proposed solution to a problem. Verify each step and the final answer "
    "independently.\n\nProblem:\n{question}\n\nProposed solution:\n{solution}\n\n"
    "Proposed final answer: {answer}\n\n"
    "Explain your check briefly, then end with one line that is exactly 'Verdict: CORRECT' "
    "or exactly 'Verdict: INCORRECT'."
)

Verdict = Literal["correct", "incorrect"]


def verifier_messages(problem: Problem, solution: str, answer: str) -> tuple[ChatMessage, ...]:
    """The verifier's prompt for one candidate solution and its extracted answer."""
    content = VERIFIER_TEMPLATE.format(question=problem.question, solution=solution.strip(), answer=answer)
    return (ChatMessage(role="user", content=content),)


def parse_verdict(text: str) -> Verdict | None:
    """The verdict on the reply's last non-empty line, exactly as the template asks; else None."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return None
    match lines[-1]:
        case "Verdict: CORRECT":
            return "correct"
        case "Verdict: INCORRECT":
            return "incorrect"
    return None
