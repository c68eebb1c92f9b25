"""Structures as data: notation round trip, shorthand, defaults, errors."""

from __future__ import annotations

import pytest

from experiments.runtime.agent_tree import actor_name
from orchestrators.stacking_structure import (
    AgentNode,
    ModelNode,
    StructureError,
    agent,
    layer_of,
    models_of,
    parse_structure,
    render,
    tool_labels,
    x_k,
)
from protocols.config import StackingConfig

Q = "Qwen2.5-72B-Instruct"
L = "Llama-3.3-70B-Instruct"
R = "DeepSeek-R1-Distill-Qwen-32B"
ODD = "my_org/model.v1-2_b:latest"
KNOWN = [Q, L, R, ODD, "GPT-4o"]


@pytest.mark.parametrize(
    "text",
    [
        Q,
        ODD,
        f"Agent[{Q}]@{Q}",
        f"Agent[{Q}, Agent[{Q}]@{Q}]@{Q}",
        f"Agent[{Q}, {L}, {R}]@{L}",
        f"Agent[Agent[{ODD}, Agent[{R}]@{R}]@{ODD}, Agent[{L}]@{L}]@{Q}",
    ],
)
def test_round_trip(text: str) -> None:
    tree = parse_structure(text, known=KNOWN)
    assert render(tree) == text
    assert parse_structure(render(tree)) == tree


def test_json_round_trip_of_the_tree() -> None:
    tree = parse_structure(f"Agent[{Q}, Agent[{ODD}]@{L}]@{Q}")
    assert AgentNode.model_validate_json(tree.model_dump_json()) == tree


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"Agent[{Q}]", f"Agent[{Q}]@{Q}"),  # orchestrator defaults to the anchor's base model
        (f"Agent[Agent[{L}]@{R}, {Q}]", f"Agent[Agent[{L}]@{R}, {Q}]@{R}"),
        (f"Agent@{L}[{Q}]", f"Agent[{Q}]@{L}"),
        (f"  Agent [ {Q} ,{L} ] @ {R} ", f"Agent[{Q}, {L}]@{R}"),
        (f"{Q}_0", Q),
        (f"{Q}_1", f"Agent[{Q}]@{Q}"),
        (f"{Q}_2", f"Agent[{Q}, Agent[{Q}]@{Q}]@{Q}"),
        (f"Agent[{R}_1, {L}]", f"Agent[Agent[{R}]@{R}, {L}]@{R}"),
    ],
)
def test_notation_variants(text: str, expected: str) -> None:
    assert render(parse_structure(text, known=KNOWN)) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty structure"),
        (f"Agent[{Q}", "ends early"),
        (f"Agent[]@{Q}", "expected a model name, got ']'"),
        (f"Agent[{Q}]@{Q} extra", "unexpected 'extra'"),
        (f"Agent@{Q}[{Q}]@{L}", "names its model twice"),
        ("Mystery-7B", "unknown model 'Mystery-7B'"),
        (f"Agent[{Q}]@GPT-5", "unknown orchestrating model 'GPT-5'"),
        ("Mystery_3", "unknown model 'Mystery_3'"),
    ],
)
def test_errors_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(StructureError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_structure(text, known=KNOWN)


def test_x_k_chain_and_layers() -> None:
    assert x_k(Q, 0) == ModelNode(name=Q)
    assert x_k(Q, 1) == AgentNode(model=Q, tools=(ModelNode(name=Q),))
    x2 = x_k(Q, 2)
    assert isinstance(x2, AgentNode) and x2.tools == (ModelNode(name=Q), x_k(Q, 1))
    assert [layer_of(x_k(Q, k)) for k in range(4)] == [0, 1, 2, 3]
    mixed = agent([x_k(Q, 2), x_k(L, 1)])
    assert layer_of(mixed) == 3 and mixed.model == Q
    assert models_of(agent([x_k(L, 1)], model=R)) == {L, R}


def test_tool_labels_are_unique() -> None:
    tools = (ModelNode(name=Q), x_k(Q, 1), agent([ModelNode(name=L)], model=Q))
    assert tool_labels(tools) == [Q, f"{Q}_agent1", f"{Q}_agent1#2"]


def test_actor_name_changes_with_what_changes_behaviour() -> None:
    cfg = StackingConfig(structure="x")
    ids = {Q: "a", L: "b"}
    base = actor_name(x_k(Q, 1), cfg, 0, ids)
    assert base == actor_name(x_k(Q, 1), StackingConfig(structure="other"), 0, ids)
    assert base != actor_name(x_k(Q, 2), cfg, 0, ids)
    assert base != actor_name(x_k(Q, 1), cfg.model_copy(update={"max_steps": 5}), 0, ids)
    assert base != actor_name(x_k(Q, 1), cfg, 1, ids)
    assert base != actor_name(x_k(Q, 1), cfg, 0, {Q: "c", L: "b"})
    assert base == actor_name(x_k(Q, 1), cfg, 0, {Q: "a", L: "z"})  # an unused model does not matter
