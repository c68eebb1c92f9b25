"""Shared pieces of the serve-sim tests: a recording stand-in model, a few problems, a server fixture."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from actors.backends.fake import FakeBackend
from experiments.serve.app import ServerSettings, SimServer, start
from experiments.serve.lookup import ProblemLookup
from protocols.messages import Problem, Usage


def recorder() -> FakeBackend:
    """The stand-in model: the test double, answering its sample index (``.requests`` keeps every request)."""
    return FakeBackend(
        lambda request: f"Reasoning.\nThe answer is \\boxed{{{request.sample_index % 1000}}}",
        usage=Usage(prompt_tokens=9, completion_tokens=4),
    )


PROBLEMS = [
    Problem(
        id="gsm8k-7",
        benchmark="gsm8k",
        question="Janet has 3 ducks.\nEach lays 2 eggs. How many eggs?",
        reference="6",
        answer_format="gsm8k",
    ),
    Problem(id="m-1", benchmark="math500", question="Compute $1+1$ exactly.", reference="2", answer_format="boxed"),
]
DUCKS = PROBLEMS[0].question
ONE = PROBLEMS[1].question

Served = tuple[str, FakeBackend, SimServer]
MakeServer = Callable[..., Awaitable[Served]]


@pytest.fixture
async def make_server() -> AsyncIterator[MakeServer]:
    """Start SimServers on free ports (stand-in models ``sim-a``/``sim-b``); all stopped at the end."""
    runners = []

    async def _make(**settings: object) -> Served:
        first = recorder()
        server = SimServer(
            {"sim-a": first, "sim-b": recorder()},
            ServerSettings(**settings),  # type: ignore[arg-type]
            ProblemLookup(PROBLEMS),
        )
        runner, port = await start(server, "127.0.0.1", 0)
        runners.append(runner)
        return f"http://127.0.0.1:{port}/v1", first, server

    yield _make
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
async def served(make_server: MakeServer) -> Served:
    return await make_server()
