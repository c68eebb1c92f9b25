"""The OpenAI features agent frameworks use, against the real simulator: tools, JSON output, logprobs, reasoning."""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest

from datasets import load_problems
from experiments.serve.app import ServerSettings, SimServer, start
from experiments.serve.cli import sim_backends
from experiments.serve.lookup import ProblemLookup
from experiments.serve.roles import extract_answer
from protocols.config import DatasetSpec
from protocols.messages import Problem

CARD = "Qwen2.5-7B-Instruct"
R1 = "DeepSeek-R1-Distill-Qwen-7B"
CALC: Any = {
    "type": "function",
    "function": {
        "name": "calculator",
        "description": "Evaluate an arithmetic expression.",
        "parameters": {
            "type": "object",
            "properties": {"expression": {"type": "string"}, "precision": {"type": "integer"}},
            "required": ["expression", "precision"],
        },
    },
}


@pytest.fixture(scope="module")
def problems() -> list[Problem]:
    return load_problems(DatasetSpec(name="gsm8k"))[:12]


@pytest.fixture
async def client(problems: list[Problem]) -> AsyncIterator[openai.AsyncOpenAI]:
    server = SimServer(sim_backends([CARD, R1], 0, 0.0), ServerSettings(think_tags=False), ProblemLookup(problems))
    runner, port = await start(server, "127.0.0.1", 0)
    client = openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0)
    yield client
    await client.close()
    await runner.cleanup()


def user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


async def test_a_function_calling_agent_calls_its_tool_then_answers(
    client: openai.AsyncOpenAI, problems: list[Problem]
) -> None:
    problem = problems[0]
    first = await client.chat.completions.create(model=CARD, messages=user(problem.question), tools=[CALC], seed=1)
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    call = choice.message.tool_calls[0]  # type: ignore[index]
    arguments = json.loads(call.function.arguments)  # type: ignore[union-attr]
    assert call.function.name == "calculator" and set(arguments) == {"expression", "precision"}  # type: ignore[union-attr]
    assert arguments["expression"] == problem.question and isinstance(arguments["precision"], int)
    history = [
        *user(problem.question),
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": f"The result is {problem.reference}"},
    ]
    final = await client.chat.completions.create(model=CARD, messages=history, tools=[CALC], seed=1)
    text = final.choices[0].message.content or ""
    assert final.choices[0].finish_reason == "stop" and extract_answer(text, "gsm8k") is not None


@pytest.mark.parametrize("choice", ["required", {"type": "function", "function": {"name": "calculator"}}])
async def test_tool_choice_required_or_named_always_calls(
    client: openai.AsyncOpenAI, problems: list[Problem], choice: Any
) -> None:
    history = [
        *user(problems[1].question),
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c0", "type": "function", "function": {"name": "calculator", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c0", "content": "7"},
    ]  # fmt: skip
    reply = await client.chat.completions.create(model=CARD, messages=history, tools=[CALC], tool_choice=choice)
    assert reply.choices[0].message.tool_calls and reply.choices[0].finish_reason == "tool_calls"
    none = await client.chat.completions.create(
        model=CARD, messages=user(problems[1].question), tools=[CALC], tool_choice="none"
    )
    assert not none.choices[0].message.tool_calls and none.choices[0].message.content


async def test_json_object_and_json_schema_outputs_follow_their_schema(
    client: openai.AsyncOpenAI, problems: list[Problem]
) -> None:
    problem = problems[2]
    loose = await client.chat.completions.create(
        model=CARD, messages=user(problem.question), response_format={"type": "json_object"}
    )
    value = json.loads(loose.choices[0].message.content or "")
    assert set(value) == {"reasoning", "answer"} and value["answer"]
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {
            "explanation": {"type": "string"},
            "final_answer": {"type": "number"},
            "units": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "confidence": {"type": "string", "enum": ["low", "high"]},
        },
        "required": ["explanation", "final_answer", "units", "confidence"],
        "additionalProperties": False,
    }
    strict = await client.chat.completions.create(
        model=CARD,
        messages=user(problem.question),
        response_format={"type": "json_schema", "json_schema": {"name": "Answer", "schema": schema, "strict": True}},
    )
    value = json.loads(strict.choices[0].message.content or "")
    assert set(value) == set(schema["properties"]) and isinstance(value["final_answer"], int | float)
    assert value["confidence"] in ("low", "high") and isinstance(value["explanation"], str)


async def test_logprobs_come_from_the_models_consistency(client: openai.AsyncOpenAI, problems: list[Problem]) -> None:
    reply = await client.chat.completions.create(
        model=CARD, messages=user(problems[3].question), logprobs=True, top_logprobs=3, temperature=0.7
    )
    content = reply.choices[0].logprobs.content  # type: ignore[union-attr]
    assert content and "".join(t.token for t in content) == reply.choices[0].message.content
    assert all(t.logprob <= 0 and len(t.top_logprobs) <= 3 for t in content)
    lowest = min(t.logprob for t in content)
    assert math.log(1 / 9) <= lowest < -0.02  # the answer token: log of the share of samples agreeing with it


async def test_reasoning_cards_return_their_thinking_apart(client: openai.AsyncOpenAI, problems: list[Problem]) -> None:
    reply = await client.chat.completions.create(model=R1, messages=user(problems[4].question))
    message = reply.choices[0].message
    reasoning = getattr(message, "reasoning_content", None) or (message.model_extra or {}).get("reasoning_content")
    assert isinstance(reasoning, str) and len(reasoning) > 500 and extract_answer(message.content or "", "gsm8k")
    assert reply.usage is not None
    assert abs(4 * reply.usage.completion_tokens - len(reasoning) - len(message.content or "")) < 8


async def test_the_answer_follows_the_format_the_prompt_asks_for(
    client: openai.AsyncOpenAI, problems: list[Problem]
) -> None:
    prompt = f"{problems[5].question}\nPut your final answer in \\boxed{{}}."
    text = (await client.chat.completions.create(model=CARD, messages=user(prompt))).choices[0].message.content or ""
    assert "\\boxed{" in text and "####" not in text


async def test_stop_cuts_the_text(client: openai.AsyncOpenAI, problems: list[Problem]) -> None:
    reply = await client.completions.create(model=CARD, prompt=f"Question: {problems[6].question}\nAnswer:", stop=["."])
    assert "." not in reply.choices[0].text and reply.choices[0].finish_reason == "stop"


async def test_streamed_tool_calls_reassemble(client: openai.AsyncOpenAI, problems: list[Problem]) -> None:
    stream: Any = await client.chat.completions.create(
        model=CARD, messages=user(problems[7].question), tools=[CALC], stream=True
    )
    name, arguments, chunks = "", "", 0
    async for chunk in stream:
        chunks += 1
        for call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            name += (call.function.name or "") if call.function else ""
            arguments += (call.function.arguments or "") if call.function else ""
    assert chunks >= 4 and name == "calculator" and json.loads(arguments)["expression"] == problems[7].question
