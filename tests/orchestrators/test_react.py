"""The ReAct loop on a scripted fake model: every-tool rule, step bound, errors as observations."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from actors.backends.fake import FakeBackend
from orchestrators.react import (
    ReactAction,
    ReactFinal,
    ReactMalformed,
    parse_react,
    react_loop,
)
from protocols.config import StackingConfig
from protocols.messages import (
    CallRecord,
    Completion,
    CompletionRequest,
    Failure,
    Grade,
    NoteRecord,
    Problem,
    ToolCallRecord,
    Usage,
    totals_of,
)
from protocols.tools import ToolAnswer

PROBLEM = Problem(id="p1", benchmark="math500", question="What is 1+1?", reference="2", answer_format="boxed")


def action(tool: str, query: str = "What is 1+1?") -> str:
    return f'Thought: ask {tool}\nAction: {tool}\nAction Input: {{"query": "{query}"}}'


FINAL = "Thought: I now know the final answer\nFinal Answer: \\boxed{2}"


def scripted(script: list[str | Failure] | Callable[[CompletionRequest], str]) -> FakeBackend:
    """A fake model replying from a script (in call order) or a function of the request; it records requests."""
    return FakeBackend(script, usage=Usage(prompt_tokens=10, completion_tokens=5), cost_usd=0.01)


class BoxGrader:
    """Extracts the last \\boxed{...} (no nesting) and compares strings."""

    async def extract(self, problem: Problem, text: str) -> str | None:
        found = re.findall(r"\\boxed\{([^{}]*)\}", text)
        return found[-1] if found else None

    async def equivalent(self, problem: Problem, a: str, b: str) -> bool:
        return a == b

    async def grade(self, problem: Problem, text: str) -> Grade:
        got = await self.extract(problem, text)
        return Grade(extracted=got, correct=got == problem.reference)


class FakeTool:
    """A tool answering with a fixed text (or failure, or exception), counting its calls."""

    def __init__(self, name: str, text: str = "So \\boxed{2}", fail: Failure | None = None, boom: bool = False):
        self.name, self.text, self.fail, self.boom = name, text, fail, boom
        self.queries: list[str] = []

    async def ask(self, problem: Problem, query: str, run_id: str) -> ToolAnswer:
        self.queries.append(query)
        if self.boom:
            raise RuntimeError("actor died")
        if self.fail is not None:
            return ToolAnswer(tool=self.name, text=None, error=self.fail)
        reply = Completion(
            model=self.name, text=self.text, usage=Usage(prompt_tokens=3, completion_tokens=2), source="sim"
        )
        trace = (CallRecord(model=self.name, role="solver", reply=reply),)
        return ToolAnswer(tool=self.name, text=self.text, answer="2", trace=trace)


async def run(model: FakeBackend, tools: dict[str, FakeTool], max_steps: int = 15) -> ToolAnswer:
    return await react_loop(
        PROBLEM,
        PROBLEM.question,
        name="agent",
        layer=1,
        model_name="orch",
        model=model,
        tools=tools,
        grader=BoxGrader(),
        run_id="r",
        seed=0,
        config=StackingConfig(structure="unused", max_steps=max_steps),
    )


def last_observation(request: CompletionRequest) -> str:
    return request.messages[-1].content


async def test_calls_every_tool_then_answers() -> None:
    model = scripted([action("A"), action("B", "sub?"), FINAL])
    tools = {"A": FakeTool("A"), "B": FakeTool("B")}
    got = await run(model, tools)
    assert got.error is None and got.text == "\\boxed{2}" and got.answer == "2" and got.steps == 3
    assert tools["B"].queries == ["sub?"]
    assert [r.meta.tools_called for r in model.requests] == [(), ("A",), ("A", "B")]
    assert [r.meta.candidates for r in model.requests] == [(), ("2",), ("2", "2")]
    assert all(r.meta.role == "agent" and r.meta.tools == ("A", "B") for r in model.requests)
    assert [r.meta.step for r in model.requests] == [0, 1, 2]
    assert [e.tool for e in got.trace if isinstance(e, ToolCallRecord)] == ["A", "B"]
    assert model.requests[1].messages[-1].content == "Observation: So \\boxed{2}"


async def test_early_final_answer_is_refused_naming_remaining_tools() -> None:
    model = scripted([FINAL, action("B"), FINAL, action("A"), FINAL])
    tools = {"A": FakeTool("A"), "B": FakeTool("B")}
    got = await run(model, tools)
    assert got.error is None and got.answer == "2" and got.steps == 5
    assert "Tools not called yet: A, B" in last_observation(model.requests[1])
    assert "Tools not called yet: A." in last_observation(model.requests[3])
    refused = [e for e in got.trace if isinstance(e, NoteRecord) and e.label == "refused_final"]
    assert [e.data["remaining"] for e in refused] == [["A", "B"], ["A"]]


@pytest.mark.parametrize("max_steps", [1, 3, 15])
async def test_step_bound_is_a_failure_never_an_answer(max_steps: int) -> None:
    # A model that only ever answers early: refused every time, never gets an answer through.
    model = scripted(lambda request: FINAL)
    got = await run(model, {"A": FakeTool("A")}, max_steps=max_steps)
    assert got.error is not None and got.error.error == "steps_exhausted"
    assert got.text is None and got.answer is None
    assert len(model.requests) == max_steps == got.steps


async def test_default_bound_is_fifteen_steps() -> None:
    assert StackingConfig(structure="x").max_steps == 15
    model = scripted(lambda request: "I am thinking")
    got = await run(model, {"A": FakeTool("A")})
    assert len(model.requests) == 15 and got.error is not None and got.error.error == "steps_exhausted"


@pytest.mark.parametrize(
    ("reply", "tool", "expected"),
    [
        ("Thought: hmm, no idea", FakeTool("A"), "Invalid format: found neither"),
        ("Action: A\nAction Input: what is 1+1", FakeTool("A"), "Invalid format: Action Input is not a JSON object"),
        (
            'Action: A\nAction Input: {"q": "x"}',
            FakeTool("A"),
            'Invalid format: Action Input needs a non-empty string "query"',
        ),
        ("Action: A", FakeTool("A"), "has no 'Action Input:'"),
        (action("Calculator"), FakeTool("A"), "'Calculator' is not a valid tool, try one of [A]"),
        (
            action("A"),
            FakeTool("A", fail=Failure(error="timeout", message="too slow")),
            "The tool 'A' failed: timeout: too slow",
        ),
        (action("A"), FakeTool("A", boom=True), "The tool 'A' failed: internal: RuntimeError in tool 'A': actor died"),
    ],
)
async def test_errors_become_observations(reply: str, tool: FakeTool, expected: str) -> None:
    model = scripted(
        lambda request: reply if request.meta.step == 0 else (action("A") if request.meta.step == 1 else FINAL)
    )
    got = await run(model, {"A": tool})
    assert expected in last_observation(model.requests[1])
    if tool.fail is None and not tool.boom:
        assert got.error is None and got.answer == "2"
    else:
        # A failed tool still counts as called (the rule is about calling); its answer is None.
        assert got.error is None
        assert model.requests[-1].meta.candidates[0] is None


async def test_model_failure_ends_the_agent_with_that_failure() -> None:
    failure = Failure(error="server", message="503", model="orch")
    model = scripted([action("A"), failure])
    got = await run(model, {"A": FakeTool("A")})
    assert got.error == failure and got.text is None and got.steps == 2


async def test_hallucinated_observation_is_cut_from_the_history() -> None:
    model = scripted([action("A") + "\nObservation: \\boxed{99}\nFinal Answer: \\boxed{99}", FINAL])
    got = await run(model, {"A": FakeTool("A")})
    assert got.answer == "2"
    assert "99" not in model.requests[1].messages[-2].content


async def test_nested_tokens_roll_up() -> None:
    model = scripted([action("A"), FINAL])
    got = await run(model, {"A": FakeTool("A")})
    totals = totals_of(got.trace)
    assert totals.calls == 3 and totals.usage.total_tokens == 2 * 15 + 5


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (action("Qwen2.5-72B-Instruct"), ReactAction("Qwen2.5-72B-Instruct", "What is 1+1?")),
        ('Action: `my_model.v2`\nAction Input: ```json\n{"query": "x"}\n```', ReactAction("my_model.v2", "x")),
        ('Action: [A]\nAction Input: {"query": "a \\"b\\""}', ReactAction("A", 'a "b"')),
        ("Thought: done\nFinal Answer: \\boxed{\\frac{1}{2}}", ReactFinal("\\boxed{\\frac{1}{2}}")),
        (
            'Final Answer: 3\nAction: A\nAction Input: {"query": "x"}',
            ReactFinal('3\nAction: A\nAction Input: {"query": "x"}'),
        ),
        ('Action: A\nAction Input: {"query": "x"}\nFinal Answer: \\boxed{3}', ReactAction("A", "x")),
        ("Final Answer:   ", ReactMalformed("'Final Answer:' is empty")),
        ("Action:\nAction Input: {}", ReactMalformed("'Action:' names no tool")),
        (
            'Action: A\nAction Input: {"query": ""}',
            ReactMalformed('Action Input needs a non-empty string "query": \'{"query": ""}\''),
        ),
        ("just text", ReactMalformed("found neither 'Action:' nor 'Final Answer:'")),
    ],
)
def test_parse_react(text: str, expected: object) -> None:
    assert parse_react(text) == expected
