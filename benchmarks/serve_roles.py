"""MoA and debate as third-party code sends them over HTTP vs the in-process collaborator roles.

    python -m benchmarks.serve_roles [--problems 100] [--card Llama-3.1-8B-Instruct]

The HTTP side is the unchanged request pattern of ``benchmarks.third_party``: the
Mixture-of-Agents aggregator gets MoA's own system prompt with the numbered references
(``inject_references_to_messages``), a debate agent in round 2 gets
llm_multiagent_debate's "One agent solution: ```...```" turn after its own first answer.
The server has to infer the role and parse the candidates out of that free text.

The in-process side is the simulator given the same messages with the ``RequestMeta`` that
slmsim's own orchestrators build (``orchestrators/moa.py``, ``orchestrators/debate.py``):
role, the candidates' answers as extracted by the grader in seat order, the debater's own
previous answer and its round, the same temperature and the sample index the server drew
(0: the first request of each conversation). Agreement = the share of replies whose final
answers are the same (issue #11's target: >= 95%). Every HTTP figure is ``sim-served``.
"""

from __future__ import annotations

import argparse
from typing import Any, NamedTuple

from protocols.messages import ChatMessage, CompletionRequest, Problem, RequestMeta


class Agreement(NamedTuple):
    """How often the served role's final answer equals the in-process role's, and how often the role was inferred."""

    name: str
    n: int
    same: int
    role_inferred: int

    def line(self) -> str:
        return (f"  {self.name:28} same final answer {self.same}/{self.n} = {self.same / self.n:.1%}; "
                f"role inferred {self.role_inferred}/{self.n}")  # fmt: skip


def _request(card: str, problem: Problem, messages: list[dict[str, str]], temperature: float, **meta: Any) -> Any:
    chat = tuple(ChatMessage(role=m["role"], content=m["content"]) for m in messages)  # type: ignore[arg-type]
    info = RequestMeta(problem=problem, problem_id=problem.id, **meta)
    return CompletionRequest(model=card, messages=chat, temperature=temperature, sample_index=0, meta=info)


def _post_raw(client: Any, model: str, messages: list[dict[str, str]], **extra: Any) -> tuple[str, str | None]:
    """(text, inferred role) of one chat request through the official client."""
    raw = client.chat.completions.with_raw_response.create(model=model, messages=messages, **extra)
    return raw.parse().choices[0].message.content or "", raw.headers.get("x-slmsim-role")


async def compare(client: Any, backend: Any, card: str, problems: list[Problem]) -> list[Agreement]:
    """Both roles on ``problems`` (GSM8K): MoA's aggregator and every seat of debate round 2."""
    from actors.backends.sim.answers import same_answer
    from benchmarks import third_party as tp
    from experiments.serve.roles import extract_answer

    def same(a: str, b: str, p: Problem) -> bool:
        x, y = extract_answer(a, p.answer_format), extract_answer(b, p.answer_format)
        return x == y or (x is not None and y is not None and same_answer(x, y))

    moa_same = moa_role = debate_same = debate_role = seats = 0
    for p in problems:
        instruction = [{"role": "user", "content": tp.DEBATE_FIRST.format(p.question)}]
        references = [_post_raw(client, m, instruction, temperature=0.7, max_tokens=2048)[0]
                      for m in tp.MOA_REFERENCE_MODELS]  # fmt: skip
        messages = tp.inject_references_to_messages(instruction, references)
        served, role = _post_raw(client, tp.MOA_AGGREGATOR, messages, temperature=0.7, max_tokens=2048)
        answers = tuple(extract_answer(r, p.answer_format) for r in references)
        local = await backend.complete(_request(card, p, messages, 0.7, role="aggregator", candidates=answers))
        moa_same += same(served, local.text, p)
        moa_role += role == "aggregator"
        contexts = [[{"role": "user", "content": tp.DEBATE_FIRST.format(p.question)}] for _ in range(3)]
        for context in contexts:  # round 1, as gen_gsm.py sends it (default temperature, n=1)
            context.append({"role": "assistant", "content": _post_raw(client, tp.DEBATE_MODEL, context, n=1)[0]})
        first = tuple(extract_answer(c[1]["content"], p.answer_format) for c in contexts)
        for i, context in enumerate(contexts):
            messages = [*context, tp.debate_followup(contexts[:i] + contexts[i + 1 :], p.question, 1)]
            served, role = _post_raw(client, tp.DEBATE_MODEL, messages, n=1)
            extra: dict[str, Any] = {"round": 2, **({"own_answer": first[i]} if first[i] is not None else {})}
            local = await backend.complete(_request(card, p, messages, 1.0, role="debater", candidates=first,
                                                    extra=extra))  # fmt: skip
            debate_same += same(served, local.text, p)
            debate_role += role == "debater"
            seats += 1
    n = len(problems)
    return [
        Agreement("MoA aggregator", n, moa_same, moa_role),
        Agreement("debate round 2 (every seat)", seats, debate_same, debate_role),
    ]


def measure(card: str, count: int) -> list[Agreement]:
    """``compare`` on the first ``count`` GSM8K test problems, against a serve-sim in this process's thread."""
    import asyncio

    import openai

    from actors.backends.factory import base_backend
    from benchmarks.serve_fuzz import threaded_server
    from benchmarks.third_party import DEBATE_MODEL, MOA_AGGREGATOR, MOA_REFERENCE_MODELS
    from datasets import load_problems
    from protocols.config import DatasetSpec, ModelSpec

    problems = load_problems(DatasetSpec(name="gsm8k"))[:count]
    backend = base_backend(ModelSpec(name=card, backend="sim", card=card), 0)
    names = {name: card for name in (*MOA_REFERENCE_MODELS, MOA_AGGREGATOR, DEBATE_MODEL)}
    with threaded_server(problems, (card,), aliases=names) as (host, port):
        client = openai.OpenAI(base_url=f"http://{host}:{port}/v1", api_key="sk-unused", max_retries=0)
        return asyncio.run(compare(client, backend, card, problems))


def report(card: str, count: int) -> None:
    print(f"roles over HTTP (third-party prompts) vs in process ({card}, GSM8K test[:{count}]):")
    for result in measure(card, count):
        print(result.line())
    print("  (target >= 95%; HTTP side sim-served, in-process side sim)", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serve_roles", description=__doc__.split("\n")[0])
    parser.add_argument("--problems", type=int, default=100)
    parser.add_argument("--card", default="Llama-3.1-8B-Instruct")
    args = parser.parse_args(argv)
    report(args.card, args.problems)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
