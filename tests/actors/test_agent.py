"""Agent actors: nested agents roll tokens up per layer; search-time reuse is per problem; Ray wiring."""

from __future__ import annotations

import sys

import pytest

from actors.agent import AgentActor, ModelTool, RemoteTool
from actors.backends.fake import FakeBackend, builtin_reply
from orchestrators.base import Collaborators
from orchestrators.react import ask_model, react_loop
from orchestrators.stacking import per_layer, stacking
from protocols.config import FakeSpec, StackingConfig
from protocols.messages import (
    Completion,
    CompletionRequest,
    Failure,
    Problem,
    ToolCallRecord,
    Usage,
    totals_of,
)
from tests.orchestrators.test_react import BoxGrader

CONFIG = StackingConfig(structure="Agent[A, Agent[B]@B]@A")


def problem(pid: str = "p1") -> Problem:
    return Problem(id=pid, benchmark="math500", question="What is 1+1?", reference="2", answer_format="boxed")


GOLD = builtin_reply(FakeSpec(reply="gold"))


def policy_model(name: str) -> FakeBackend:
    """The gold fake: as agent it calls each uncalled tool in order, then answers; as solver it solves.

    Usage depends on the role so per-layer sums can be checked exactly.
    """

    def reply(request: CompletionRequest) -> Completion | Failure:
        text = GOLD(request)
        assert isinstance(text, str)
        agent = request.meta.role == "agent"
        usage = (
            Usage(prompt_tokens=100, completion_tokens=10) if agent else Usage(prompt_tokens=20, completion_tokens=5)
        )
        return Completion(model=name, text=text, usage=usage, cost_usd=usage.total_tokens / 1e6, source="fake")

    return FakeBackend(reply, model=name)


def box_grader(answer_format: str) -> BoxGrader:
    return BoxGrader()


def build(config: StackingConfig = CONFIG) -> tuple[AgentActor, AgentActor, dict[str, FakeBackend]]:
    """``Agent[A, Agent[B]@B]@A`` in-process: the inner agent is the outer agent's tool."""
    models = {"A": policy_model("A"), "B": policy_model("B")}

    def tool(name: str) -> ModelTool:
        return ModelTool(name, models[name], ask_model, box_grader, config)

    inner = AgentActor("B_agent1", 1, "B", models["B"], {"B": tool("B")}, react_loop, box_grader, config)
    outer = AgentActor(
        "A_agent2", 2, "A", models["A"], {"A": tool("A"), "B_agent1": inner}, react_loop, box_grader, config
    )
    return outer, inner, models


async def test_nested_tokens_roll_up_per_layer() -> None:
    outer, _, _ = build()
    collab = Collaborators(models={}, grader=BoxGrader(), tools={"root": outer})
    outcome = await stacking(problem(), CONFIG, collab)
    assert outcome.error is None and outcome.answer == "2"
    # outer: 3 agent calls; its raw tool A: 1 solver call; inner agent: 2 agent calls + 1 solver call of B.
    totals = totals_of(outcome.trace)
    assert totals.calls == 7
    assert totals.usage.total_tokens == 5 * 110 + 2 * 25
    layers = outcome.details["per_layer"]
    assert {k: v["total_tokens"] for k, v in layers.items()} == {"layer_0": 50, "layer_1": 220, "layer_2": 330}
    assert sum(v["cost_usd"] for v in layers.values()) == pytest.approx(totals.cost_usd)
    nested = [e for e in outcome.trace if isinstance(e, ToolCallRecord) and e.tool == "B_agent1"]
    assert len(nested) == 1 and totals_of(nested[0].trace).calls == 3


async def test_reuse_serves_the_same_problem_only() -> None:
    config = CONFIG.model_copy(update={"reuse_answers": True})
    _, inner, models = build(config)
    first = await inner.ask(problem("p1"), "What is 1+1?", "r")
    again = await inner.ask(problem("p1"), "What is 1+1?", "r")
    other = await inner.ask(problem("p2"), "What is 1+1?", "r")
    assert not first.reused and again.reused and not other.reused
    assert again.trace == first.trace  # the structure's cost is still reported in full
    assert len(models["B"].requests) == 2 * 3  # p1 once, p2 once; the repeat made no model call


async def test_without_reuse_every_ask_runs() -> None:
    _, inner, models = build()
    for _ in range(2):
        got = await inner.ask(problem("p1"), "What is 1+1?", "r")
        assert not got.reused
    assert len(models["B"].requests) == 6


def test_per_layer_of_an_empty_trace() -> None:
    assert per_layer(()) == {}


@pytest.mark.ray
def test_agent_actor_whose_tool_is_an_agent_actor(ray_session: None) -> None:
    import asyncio

    from ray import cloudpickle

    # The fakes live in this test module, which Ray workers cannot import by name.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    models = {"A": policy_model("A"), "B": policy_model("B")}

    def tool(name: str) -> ModelTool:
        return ModelTool(name, models[name], ask_model, box_grader, CONFIG)

    options = {"num_cpus": 0}
    inner = RemoteTool.spawn(
        "test-agent-B1", options, "B_agent1", 1, "B", models["B"], {"B": tool("B")}, react_loop, box_grader, CONFIG,
        name="B_agent1",
    )  # fmt: skip
    outer = RemoteTool.spawn(
        "test-agent-A2",
        options,
        "A_agent2",
        2,
        "A",
        models["A"],
        {"A": tool("A"), "B_agent1": inner},
        react_loop,
        box_grader,
        CONFIG,
    )
    collab = Collaborators(models={}, grader=BoxGrader(), tools={"root": outer})
    try:
        outcome = asyncio.run(stacking(problem(), CONFIG, collab))
    finally:
        outer.shutdown()
        inner.shutdown()
    assert outcome.error is None and outcome.answer == "2"
    assert totals_of(outcome.trace).calls == 7
    assert set(outcome.details["per_layer"]) == {"layer_0", "layer_1", "layer_2"}
