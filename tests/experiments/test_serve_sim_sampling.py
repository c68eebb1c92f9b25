"""serve-sim samples like a real server: fresh samples per call, seed = a pure function, n distinct, T=0 greedy."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest

from datasets import load_problems
from experiments.serve.app import ServerSettings, SimServer, start
from experiments.serve.cli import sim_backends
from experiments.serve.lookup import ProblemLookup
from protocols.config import DatasetSpec
from protocols.messages import Problem

CARD = "Llama-3.2-3B-Instruct"


@pytest.fixture(scope="module")
def problems() -> list[Problem]:
    return load_problems(DatasetSpec(name="math500"))[:40]


async def _serve(problems: list[Problem], seed: int = 0) -> tuple[openai.AsyncOpenAI, object]:
    server = SimServer(sim_backends([CARD], seed, 0.0), ServerSettings(seed=seed), ProblemLookup(problems))
    runner, port = await start(server, "127.0.0.1", 0)
    return openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0), runner


@pytest.fixture
async def client(problems: list[Problem]) -> AsyncIterator[openai.AsyncOpenAI]:
    client, runner = await _serve(problems)
    yield client
    await client.close()
    await runner.cleanup()  # type: ignore[attr-defined]


def ask(problem: Problem) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"Solve: {problem.question}\nPut the answer in \\boxed{{}}."}]


async def texts(client: openai.AsyncOpenAI, problem: Problem, times: int, **kw: object) -> list[str]:
    replies = [
        await client.chat.completions.create(model=CARD, messages=ask(problem), **kw)  # type: ignore[call-overload]
        for _ in range(times)
    ]
    return [c.message.content or "" for r in replies for c in r.choices]


async def test_repeated_identical_requests_are_fresh_samples(
    client: openai.AsyncOpenAI, problems: list[Problem]
) -> None:
    distinct = [len(set(await texts(client, p, 5, temperature=0.7))) for p in problems[:10]]
    assert all(d >= 4 for d in distinct), distinct  # texts differ (style and, often, the answer)


async def test_a_seed_is_a_pure_function_and_other_seeds_differ(
    client: openai.AsyncOpenAI, problems: list[Problem]
) -> None:
    problem = problems[0]
    same = await texts(client, problem, 3, temperature=0.7, seed=42)
    assert len(set(same)) == 1
    assert len(set(await texts(client, problem, 1, temperature=0.7, seed=43)) | set(same)) == 2


async def test_n_gives_distinct_samples_and_t0_is_greedy(client: openai.AsyncOpenAI, problems: list[Problem]) -> None:
    many = await texts(client, problems[1], 1, temperature=0.7, n=6)
    assert len(many) == 6 and len(set(many)) >= 5
    greedy = await texts(client, problems[1], 3, temperature=0.0)
    greedy += await texts(client, problems[1], 1, temperature=0, n=3)
    from experiments.serve.roles import extract_answer

    assert len({extract_answer(t, "boxed") for t in greedy}) == 1  # T=0: the same answer every time


async def test_a_restarted_server_replays_the_same_sequence(problems: list[Problem]) -> None:
    runs = []
    for _ in range(2):
        client, runner = await _serve(problems, seed=5)
        runs.append(await texts(client, problems[2], 4, temperature=0.7))
        await client.close()
        await runner.cleanup()  # type: ignore[attr-defined]
    assert runs[0] == runs[1] and len(set(runs[0])) >= 3


async def test_concurrent_identical_requests_never_share_a_sample(
    client: openai.AsyncOpenAI, problems: list[Problem]
) -> None:
    same: Any = ask(problems[3])
    replies = await asyncio.gather(
        *(client.chat.completions.create(model=CARD, messages=same, temperature=0.7) for _ in range(40))
    )
    found = [r.choices[0].message.content for r in replies]
    assert len(set(found)) >= 36  # 40 draws; only style/answer coincidences can repeat a text
