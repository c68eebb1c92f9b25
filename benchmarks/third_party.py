r"""Unchanged third-party multi-agent code against serve-sim: faithful re-implementations of its requests.

    python -m benchmarks.third_party [--problems 100] [--card Llama-3.1-8B-Instruct]

Each runner below sends exactly the requests of a public project, with only the base URL,
the key and the model names changed (model names through ``--alias``, as a user would):

* **Mixture-of-Agents** (togethercomputer/MoA, Apache-2.0, ``utils.py``): reference models
  answer the user's message at T=0.7; ``inject_references_to_messages`` puts their numbered
  responses in a system prompt; the aggregator answers at T=0.7. Hard-coded model names
  ``Qwen/Qwen2-72B-Instruct`` & co. are aliases of simulated cards.
* **Multi-agent debate** (composable-models/llm_multiagent_debate, ``gsm/gen_gsm.py``, no
  licence file, so re-implemented, not vendored): 3 agents, 2 rounds, ``gpt-3.5-turbo-0301``,
  ``n=1``, default temperature; round 2 shows each agent the others' previous answers
  ("One agent solution: ```...```"); the final answer is the majority (``eval_gsm.py``).
* **SLM-MUX** (billwang485/SLM-MUX-ICLR, ``engine/mux.py`` and ``benchmarks/gsm8k.py``):
  each model answers the GSM8K system + "Problem:" prompt k=5 times at T=0.3 (identical
  requests, no seed); confidence = the share of its majority answer; the most confident
  model wins, ties to the first listed (validation-accuracy order).
* **LangChain** (langchain 1.x / langchain-openai, not installed here: a faithful wire
  equivalent): ``create_agent`` with one tool (``bind_tools`` -> tool loop until a reply has
  no tool calls), and ``with_structured_output`` by ``function_calling`` (a named
  ``tool_choice`` and ``parallel_tool_calls: false``), ``json_mode`` (``response_format:
  json_object``) and ``json_schema`` (``response_format: json_schema``, strict).

Reports accuracy and the distinct-sample rate (distinct texts among identical requests).
Every figure is ``sim-served`` (the simulator behind serve-sim).
"""

from __future__ import annotations

import argparse
import copy
import json
import re
from collections import Counter
from typing import Any, NamedTuple

from pydantic import BaseModel, ValidationError

MOA_REFERENCE_MODELS = ("Qwen/Qwen2-72B-Instruct", "Qwen/Qwen1.5-72B-Chat", "mistralai/Mixtral-8x22B-Instruct-v0.1")
MOA_AGGREGATOR = "Qwen/Qwen2-72B-Instruct"
DEBATE_MODEL = "gpt-3.5-turbo-0301"
MUX_MODELS = (
    "mistralai/Mistral-7B-Instruct-v0.3",
    "Qwen/Qwen2.5-7B-Instruct-Turbo",
    "meta-llama/Llama-3.2-3B-Instruct-Turbo",
)
MUX_SYSTEM = (
    "You are a helpful math tutor. Reason step by step to solve the problem. After your reasoning, output the final "
    "answer on a new line prefixed with '####'. Example: #### 42"
)
MOA_SYSTEM = (
    "You have been provided with a set of responses from various open-source models to the latest user query. Your "
    "task is to synthesize these responses into a single, high-quality response. It is crucial to critically evaluate "
    "the information provided in these responses, recognizing that some of it may be biased or incorrect. Your "
    "response should not simply replicate the given answers but should offer a refined, accurate, and comprehensive "
    "reply to the instruction. Ensure your response is well-structured, coherent, and adheres to the highest "
    "standards of accuracy and reliability.\n\nResponses from models:"
)
DEBATE_FIRST = (
    "Can you solve the following math problem? {} Explain your reasoning. Your final answer should be a single "
    "numerical number, in the form \\boxed{{answer}}, at the end of your response. "
)


def inject_references_to_messages(messages: list[dict[str, str]], references: list[str]) -> list[dict[str, str]]:
    """MoA's ``utils.inject_references_to_messages``."""
    messages = copy.deepcopy(messages)
    system = MOA_SYSTEM
    for i, reference in enumerate(references):
        system += f"\n{i + 1}. {reference}"
    if messages[0]["role"] == "system":
        messages[0]["content"] += "\n\n" + system
    else:
        messages = [{"role": "system", "content": system}, *messages]
    return messages


def moa(client: Any, instruction: str) -> tuple[str, list[str]]:
    """One MoA answer (one layer of references, then the aggregator): (final text, references)."""
    messages = [{"role": "user", "content": instruction}]
    references = [
        client.chat.completions.create(model=m, messages=messages, temperature=0.7, max_tokens=2048)
        .choices[0]
        .message.content
        for m in MOA_REFERENCE_MODELS
    ]
    final = client.chat.completions.create(
        model=MOA_AGGREGATOR,
        messages=inject_references_to_messages(messages, references),
        temperature=0.7,
        max_tokens=2048,
    )
    return final.choices[0].message.content, references


def debate_followup(agent_contexts_other: list[list[dict[str, str]]], question: str, idx: int) -> dict[str, str]:
    """``gen_gsm.construct_message``."""
    prefix = "These are the solutions to the problem from other agents: "
    for agent in agent_contexts_other:
        prefix += "\n\n One agent solution: ```{}```".format(agent[idx]["content"])
    prefix += (
        "\n\n Using the solutions from other agents as additional information, can you provide your answer to the "
        f"math problem? \n The original math problem is {question}. Your final answer should be a single numerical "
        "number, in the form \\boxed{answer}, at the end of your response."
    )
    return {"role": "user", "content": prefix}


def debate(client: Any, question: str, agents: int = 3, rounds: int = 2) -> list[list[dict[str, str]]]:
    """``gen_gsm.py``'s loop for one question: the agents' contexts after ``rounds`` rounds."""
    contexts = [[{"role": "user", "content": DEBATE_FIRST.format(question)}] for _ in range(agents)]
    for rnd in range(rounds):
        for i, context in enumerate(contexts):
            if rnd != 0:
                context.append(debate_followup(contexts[:i] + contexts[i + 1 :], question, 2 * rnd - 1))
            completion = client.chat.completions.create(model=DEBATE_MODEL, messages=context, n=1)
            context.append({"role": "assistant", "content": completion.choices[0].message.content})
    return contexts


def parse_boxed_number(text: str | None) -> str | None:
    """``eval_gsm.parse_answer``: the last \\boxed{} number, else the last number."""
    if not text:
        return None
    boxed = re.findall(r"\\boxed\{([^}]*)\}", text)
    pool = boxed[-1:] if boxed else [text]
    numbers = re.findall(r"-?\d[\d,]*\.?\d*", pool[0])
    return numbers[-1].replace(",", "").rstrip(".") if numbers else None


def same_number(a: str | None, b: str) -> bool:
    try:
        return a is not None and abs(float(a) - float(b.replace(",", ""))) < 1e-6
    except ValueError:
        return False


class MuxItem(NamedTuple):
    """One SLM-MUX decision: the answer, the winning model, its confidence, and the samples' texts."""

    answer: str | None
    model: str
    confidence: float
    texts: dict[str, list[str]]


def slm_mux(client: Any, question: str, models: tuple[str, ...] = MUX_MODELS, k: int = 5) -> MuxItem:
    """``MUXEngine.process_item`` with consistency confidence."""
    messages = [{"role": "system", "content": MUX_SYSTEM}, {"role": "user", "content": "Problem:\n" + question}]
    best: tuple[float, str, str | None] = (-1.0, models[0], None)
    texts: dict[str, list[str]] = {}
    for model in models:
        replies = [
            client.chat.completions.create(model=model, messages=messages, temperature=0.3).choices[0].message.content
            for _ in range(k)
        ]
        texts[model] = replies
        answers = [_hashes(r) or parse_boxed_number(r) for r in replies]
        votes = Counter(a for a in answers if a is not None)
        top, count = votes.most_common(1)[0] if votes else (None, 0)
        if count / k > best[0] + 1e-9:  # strictly higher: ties stay with the model listed first
            best = (count / k, model, top)
    return MuxItem(best[2], best[1], best[0], texts)


# --- LangChain, on the wire --------------------------------------------------------------


class MathAnswer(BaseModel):
    """The final answer to a math problem."""

    reasoning: str
    answer: float


SEARCH_TOOL = {
    "type": "function",
    "function": {
        "name": "search",
        "description": "Search for information about a query.",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
    },
}


def create_agent(client: Any, model: str, question: str, max_turns: int = 6) -> tuple[str | None, list[str]]:
    """LangChain ``create_agent(model, tools=[search])``: call the model with the tool bound until no tool call."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": question}]
    queries: list[str] = []
    for _ in range(max_turns):
        reply = client.chat.completions.create(model=model, messages=messages, tools=[SEARCH_TOOL], stream=False)
        message = reply.choices[0].message
        if not message.tool_calls:
            return message.content, queries
        messages.append(
            {
                "role": "assistant",
                "content": message.content or "",
                "tool_calls": [c.model_dump() for c in message.tool_calls],
            }
        )
        for call in message.tool_calls:
            query = json.loads(call.function.arguments)["query"]
            queries.append(query)
            messages.append(
                {"role": "tool", "tool_call_id": call.id, "content": f"No results found for {query[:40]!r}."}
            )
    return None, queries


def structured(client: Any, model: str, question: str, method: str) -> MathAnswer | None:
    """``ChatOpenAI(...).with_structured_output(MathAnswer, method=method).invoke(question)``."""
    messages = [{"role": "user", "content": question}]
    schema = MathAnswer.model_json_schema()
    if method == "function_calling":
        tool = {"type": "function", "function": {"name": "MathAnswer", "description": MathAnswer.__doc__,
                                                 "parameters": schema}}  # fmt: skip
        reply = client.chat.completions.create(
            model=model,
            messages=messages,
            tools=[tool],
            tool_choice={"type": "function", "function": {"name": "MathAnswer"}},
            parallel_tool_calls=False,
        )
        calls = reply.choices[0].message.tool_calls
        try:
            return MathAnswer.model_validate_json(calls[0].function.arguments) if calls else None
        except ValidationError:
            return None
    if method == "json_mode":
        reply = client.chat.completions.create(model=model, messages=messages, response_format={"type": "json_object"})
    else:
        strict_schema = {**schema, "additionalProperties": False}
        fmt = {"name": "MathAnswer", "description": MathAnswer.__doc__, "schema": strict_schema, "strict": True}
        reply = client.chat.completions.create(
            model=model, messages=messages, response_format={"type": "json_schema", "json_schema": fmt}
        )
    content = reply.choices[0].message.content
    try:  # LangChain raises OutputParserException here; the runner counts it as not parsed
        return MathAnswer.model_validate_json(content) if content else None
    except ValidationError:
        return None


class Report(NamedTuple):
    """What one third-party runner achieved on the problems."""

    name: str
    n: int
    correct: int
    distinct: float
    note: str = ""

    def line(self) -> str:
        return f"{self.name:34} accuracy {self.correct / self.n:6.1%} ({self.correct}/{self.n})  " + (
            f"distinct-sample rate {self.distinct:.2f}  {self.note}"
        )


def run_all(client: Any, problems: list[Any], card: str) -> list[Report]:
    """Every runner on ``problems`` (GSM8K): accuracy and distinct-sample rates."""
    reports: list[Report] = []
    moa_right = ref_distinct = 0
    for p in problems:
        final, refs = moa(client, DEBATE_FIRST.format(p.question))
        moa_right += same_number(parse_boxed_number(final), p.reference)
        ref_distinct += len(set(refs))
    reports.append(Report("MoA (togethercomputer/MoA)", len(problems), moa_right, ref_distinct / (3 * len(problems))))
    right = distinct = changed = disagreed = 0
    for p in problems:
        contexts = debate(client, p.question)
        first = [c[1]["content"] for c in contexts]
        distinct += len(set(first))
        answers = [parse_boxed_number(c[-1]["content"]) for c in contexts]
        before = [parse_boxed_number(t) for t in first]
        for i, (b, a) in enumerate(zip(before, answers, strict=True)):
            others = [x for j, x in enumerate(before) if j != i]
            if others[0] == others[1] and others[0] != b:
                disagreed += 1
                changed += a == others[0]
        vote = Counter(a for a in answers if a is not None).most_common(1)
        right += bool(vote) and same_number(vote[0][0], p.reference)
    note = f"followed two agreeing peers {changed}/{disagreed}"
    reports.append(Report("debate (llm_multiagent_debate)", len(problems), right, distinct / (3 * len(problems)), note))
    mux_right = certain = distinct_mux = 0
    for p in problems:
        item = slm_mux(client, p.question)
        mux_right += same_number(item.answer, p.reference)
        certain += item.confidence == 1.0
        distinct_mux += sum(len(set(t)) for t in item.texts.values())
    note = f"confidence 1.0 on {certain}/{len(problems)}"
    share = distinct_mux / (5 * len(MUX_MODELS) * len(problems))
    reports.append(Report("SLM-MUX (SLM-MUX-ICLR), k=5", len(problems), mux_right, share, note))
    agent_right = called = 0
    for p in problems:
        text, queries = create_agent(client, card, p.question)
        agent_right += same_number(parse_boxed_number(text) or _hashes(text), p.reference)
        called += len(queries) == 1 and queries[0] == p.question
    reports.append(
        Report("LangChain create_agent + 1 tool", len(problems), agent_right, 1.0, f"tool called once {called}")
    )
    for method in ("function_calling", "json_mode", "json_schema"):
        got = [structured(client, card, p.question, method) for p in problems]
        ok = sum(g is not None and same_number(str(g.answer), p.reference) for g, p in zip(got, problems, strict=True))
        parsed = sum(g is not None for g in got)
        reports.append(Report(f"with_structured_output {method}", len(problems), ok, 1.0, f"parsed {parsed}"))
    return reports


def _hashes(text: str | None) -> str | None:
    found = re.findall(r"####\s*(-?[\d,.]+)", text or "")
    return found[-1].replace(",", "") if found else None


MUX_CARDS = ("Llama-3.1-8B-Instruct", "Qwen2.5-7B-Instruct", "Llama-3.2-3B-Instruct")


def aliases(card: str) -> dict[str, str]:
    """The hard-coded model names of the runners, as serve-sim ``--alias`` entries."""
    names = {name: card for name in (*MOA_REFERENCE_MODELS, MOA_AGGREGATOR, DEBATE_MODEL)}
    return {**names, **dict(zip(MUX_MODELS, MUX_CARDS, strict=True))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.third_party", description=__doc__.split("\n")[0])
    parser.add_argument("--problems", type=int, default=100)
    parser.add_argument("--card", default="Llama-3.1-8B-Instruct")
    args = parser.parse_args(argv)
    import openai

    from benchmarks.serve_fuzz import threaded_server
    from datasets import load_problems
    from protocols.config import DatasetSpec

    problems = load_problems(DatasetSpec(name="gsm8k"))[: args.problems]
    cards = tuple(dict.fromkeys((args.card, *MUX_CARDS)))
    with threaded_server(problems, cards, aliases=aliases(args.card)) as (host, port):
        client = openai.OpenAI(base_url=f"http://{host}:{port}/v1", api_key="sk-unused", max_retries=0)
        for report in run_all(client, problems, args.card):
            print(report.line(), flush=True)
    print(f"(source: sim-served, card {args.card}, GSM8K test[:{args.problems}])")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
