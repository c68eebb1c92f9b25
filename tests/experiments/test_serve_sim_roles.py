"""Role inference from plain conversation text: MoA, debate, verifier, ReAct and tool-calling prompts."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from experiments.serve.roles import infer_meta
from experiments.serve.wire import BadRequest, parse_request
from orchestrators.prompts import aggregator_messages, debate_followup, solver_messages, verifier_messages
from protocols.messages import Problem

MATH = Problem(id="m-5", benchmark="math500", question="What is $3 \\cdot 4$?", reference="12", answer_format="boxed")
GSM = Problem(id="g-5", benchmark="gsm8k", question="Tom has 3 bags of 4 apples. How many apples?", reference="12",
              answer_format="gsm8k")  # fmt: skip
SOLUTIONS = ["Three fours.\nSo \\boxed{12}", "Adding wrongly.\nSo \\boxed{13}", "Multiply.\nSo \\boxed{12}"]

TOGETHER_MOA = (
    "You have been provided with a set of responses from various open-source models to the latest user query. "
    "Your task is to synthesize these responses into a single, high-quality response. It is crucial to critically "
    "evaluate the information provided in these responses, recognizing that some of it may be biased or incorrect."
    "\n\nResponses from models:"
)
DU_DEBATE = (
    "These are the solutions to the problem from other agents: {blocks}\n\n Using the reasoning from other agents as "
    "additional advice, can you give an updated answer? Examine your solution and that other agents step by step. "
    "Put your answer in the form \\boxed{{answer}} at the end of your response."
)
REACT = (
    "Answer the following questions as best you can. You have access to the following tools:\n\n"
    "calculator: evaluates arithmetic\nsearch: looks things up\n\nUse the following format:\n\n"
    "Question: the input question you must answer\nThought: you should always think about what to do\n"
    "Action: the action to take, should be one of [calculator, search]\nAction Input: the input to the action\n"
    "Observation: the result of the action\n... \nFinal Answer: the final answer to the original input question"
    "\n\nBegin!\n\nQuestion: {q}\nThought: I should compute it.\nAction: calculator\nAction Input: 3*4\n"
    "Observation: 12\nThought:"
)


def msgs(*pairs: tuple[str, str]) -> list[Any]:
    return [{"role": r, "content": c} for r, c in pairs]


def of(messages: Any) -> list[dict[str, Any]]:
    return [{"role": m.role, "content": m.content} for m in messages]


MAJORITY = ("12", "13", "12")
NUMBERED = "".join(f"\n{i}. {s}" for i, s in enumerate(SOLUTIONS, 1))
CASES = [
    ("slmsim solver", of(solver_messages(MATH)), {}, MATH, "solver", {}),
    ("slmsim MoA", of(aggregator_messages(MATH, SOLUTIONS)), {}, MATH, "aggregator", {"candidates": MAJORITY}),
    (
        "Together MoA (system prompt)",
        msgs(("system", TOGETHER_MOA + NUMBERED), ("user", MATH.question)),
        {},
        MATH,
        "aggregator",
        {"candidates": ("12", "13", "12")},
    ),
    (
        "slmsim debate round 2",
        [*of(solver_messages(MATH)), {"role": "assistant", "content": SOLUTIONS[1]},
         *of([debate_followup(MATH, [SOLUTIONS[0], SOLUTIONS[2]])])],
        {},
        MATH,
        "debater",
        {"candidates": ("13", "12", "12"), "extra": {"own_answer": "13", "round": 2}},
    ),
    (
        "Du et al. debate",
        msgs(("user", MATH.question), ("assistant", SOLUTIONS[1]),
             ("user", DU_DEBATE.format(blocks="".join(f"\n\n One agent solution: ```{s}```" for s in SOLUTIONS[::2])))),
        {},
        MATH,
        "debater",
        {"candidates": ("13", "12", "12")},
    ),
    ("slmsim verifier", of(verifier_messages(MATH, SOLUTIONS[1], "13")), {}, MATH, "verifier", {"target": "13"}),
    (
        "plain verifier",
        msgs(("user", f"Problem: {GSM.question}\nSolution: 3*4 = 12.\n#### 12\nIs the solution correct? Verify it.")),
        {},
        GSM,
        "verifier",
        {"target": "12"},
    ),
    ("ReAct text", msgs(("user", REACT.format(q=GSM.question))), {}, GSM, "agent",
     {"tools": ("calculator", "search"), "tools_called": ("calculator",), "candidates": ("12",), "step": 1}),
    (
        "function calling with a tool result",
        [{"role": "user", "content": GSM.question},
         {"role": "assistant", "content": None, "tool_calls": [
             {"id": "c1", "type": "function", "function": {"name": "calc", "arguments": '{"expression": "3*4"}'}}]},
         {"role": "tool", "tool_call_id": "c1", "content": "12"}],
        {"tools": [{"type": "function", "function": {"name": "calc", "parameters": {"type": "object"}}}]},
        GSM,
        "agent",
        {"tools": ("calc",), "tools_called": ("calc",), "candidates": ("12",), "step": 1},
    ),
]  # fmt: skip


@pytest.mark.parametrize(("name", "messages", "extra", "problem", "role", "fields"), CASES, ids=[c[0] for c in CASES])
def test_role_and_candidates_are_read_from_the_text(
    name: str,
    messages: list[dict[str, Any]],
    extra: dict[str, Any],
    problem: Problem,
    role: str,
    fields: dict[str, Any],
) -> None:
    wire = parse_request({"model": "m", "messages": messages, **extra}, chat=True)
    meta = infer_meta(wire, problem, None)
    assert meta.role == role and meta.problem == problem
    for key, value in fields.items():
        assert getattr(meta, key) == value, (key, getattr(meta, key))


def test_a_client_can_force_the_role() -> None:
    wire = parse_request({"model": "m", "messages": of(solver_messages(MATH))}, chat=True)
    assert infer_meta(wire, MATH, "debater").role == "debater"
    assert infer_meta(wire, MATH, "judge").role == "aggregator"  # another name of the aggregator
    with pytest.raises(BadRequest, match="x-slmsim-role"):
        infer_meta(wire, MATH, "wizard")
    given = parse_request({"model": "m", "messages": of(solver_messages(MATH)), "slmsim_meta": {"role": "verifier",
                           "target": "7"}}, chat=True)  # fmt: skip
    meta = infer_meta(given, MATH, None)
    assert (meta.role, meta.target, meta.problem) == ("verifier", "7", MATH)


async def test_an_aggregator_over_http_listens_to_its_references() -> None:
    """The issue's MoA bug: an aggregator whose references are mostly right must not answer alone."""
    from datasets import load_problems
    from experiments.serve.app import ServerSettings, SimServer, start
    from experiments.serve.cli import sim_backends
    from experiments.serve.lookup import ProblemLookup
    from protocols.config import DatasetSpec

    problems = load_problems(DatasetSpec(name="math500"))[200:260]
    card = "Qwen2.5-3B-Instruct"
    server = SimServer(sim_backends([card], 0, 0.0), ServerSettings(), ProblemLookup(problems))
    runner, port = await start(server, "127.0.0.1", 0)
    client = openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0)
    follow = against = planted = 0
    try:
        for p in problems:
            right = f"Working it out.\nSo the answer is $\\boxed{{{p.reference}}}$."
            odd = "Working it out.\nSo the answer is $\\boxed{987654}$."  # nobody's own answer
            for refs in ((right, odd, right), (odd, right, odd)):
                system = TOGETHER_MOA + "".join(f"\n{i}. {r}" for i, r in enumerate(refs, 1))
                agg = await client.chat.completions.create(
                    model=card, messages=msgs(("system", system), ("user", p.question))
                )  # type: ignore[arg-type]
                text = agg.choices[0].message.content or ""
                if refs[0] is right:
                    follow += p.reference in text
                else:
                    against += p.reference in text
                    planted += "987654" in text
    finally:
        await client.close()
        await runner.cleanup()
    assert server.roles["aggregator"] == 2 * len(problems)
    # The old bug answered solo on every problem: the references changed nothing. How far a
    # small aggregator follows its references is the simulator's fitted conformity rule, not
    # this test's business: only that it hears them, and that a right majority helps.
    assert planted >= 1 and follow > against, (follow, against, planted)


def test_third_party_moa_and_debate_prompts_over_http_agree_with_the_in_process_roles() -> None:
    """MoA's aggregator prompt and llm_multiagent_debate's round 2, as sent: the server infers role and candidates."""
    from benchmarks.serve_roles import measure

    moa, debate = measure("Llama-3.1-8B-Instruct", 12)
    assert moa.role_inferred == moa.n and debate.role_inferred == debate.n
    assert moa.same >= 0.95 * moa.n and debate.same >= 0.95 * debate.n, (moa, debate)
