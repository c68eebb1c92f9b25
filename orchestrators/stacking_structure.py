"""Stacking structures as data: a tree of agents over models and its notation (no Ray).

Notation: a model name is a raw model (``X_0``); ``Agent[T1, T2, ...]@M`` is an agent
orchestrated by model ``M`` whose tools are ``T1, T2, ...`` (``Agent@M[...]`` reads the
same). Without ``@M`` the orchestrator is the base model of the first tool (the
anchor), never an implicit frontier model. Given the known model names, ``X_k``
(a known model name, ``_``, a number) is shorthand for ``X_1 = Agent[X_0]@X``,
``X_k = Agent[X_0, X_{k-1}]@X``.
Model names may hold any character but whitespace and ``[ ] , @``.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Annotated, Literal

from pydantic import Field

from protocols.config import Strict


class StructureError(ValueError):
    """A structure that cannot be parsed or built; the message names the bad part."""


class ModelNode(Strict):
    """A raw model answering as a tool (``X_0``)."""

    kind: Literal["model"] = "model"
    name: str = Field(min_length=1)


class AgentNode(Strict):
    """A ReAct agent: an orchestrating model and its tools (models or agents)."""

    kind: Literal["agent"] = "agent"
    model: str = Field(min_length=1)
    tools: tuple[Node, ...] = Field(min_length=1)


Node = Annotated[ModelNode | AgentNode, Field(discriminator="kind")]
AgentNode.model_rebuild()


def layer_of(node: Node) -> int:
    """Height of a node: 0 for a raw model, 1 + the highest tool for an agent (``X_k`` has k)."""
    match node:
        case ModelNode():
            return 0
        case AgentNode(tools=tools):
            return 1 + max(layer_of(t) for t in tools)
    raise TypeError(f"not a structure node: {node!r}")


def base_model(node: Node) -> str:
    """The model a node is built on: the raw model's name, or the agent's orchestrating model."""
    return node.name if isinstance(node, ModelNode) else node.model


def models_of(node: Node) -> set[str]:
    """Every model name a structure uses (tools and orchestrators)."""
    if isinstance(node, ModelNode):
        return {node.name}
    return {node.model}.union(*(models_of(t) for t in node.tools))


def agent(tools: list[Node] | tuple[Node, ...], model: str | None = None) -> AgentNode:
    """``Agent[tools]@model``; the orchestrator defaults to the anchor's (first tool's) base model."""
    if not tools:
        raise StructureError("an agent needs at least one tool")
    return AgentNode(model=model or base_model(tools[0]), tools=tuple(tools))


def x_k(model: str, k: int) -> Node:
    """The warm-up chain: ``X_0`` = the raw model, ``X_1 = Agent[X_0]@X``, ``X_k = Agent[X_0, X_{k-1}]@X``."""
    if k < 0:
        raise StructureError(f"level must be >= 0, got {k}")
    raw = ModelNode(name=model)
    node: Node = raw
    for level in range(1, k + 1):
        # X_1 = Agent[X_0]; from X_2 on the raw model sits beside the level below.
        node = AgentNode(model=model, tools=(raw,) if level == 1 else (raw, node))
    return node


def render(node: Node) -> str:
    """The readable notation of a structure (``parse_structure`` reads it back)."""
    if isinstance(node, ModelNode):
        return node.name
    return f"Agent[{', '.join(render(t) for t in node.tools)}]@{node.model}"


def tool_label(node: Node) -> str:
    """The name a parent agent knows this node by (the ``Action:`` it writes)."""
    if isinstance(node, ModelNode):
        return node.name
    return f"{node.model}_agent{layer_of(node)}"


def tool_labels(tools: tuple[Node, ...]) -> list[str]:
    """Labels of an agent's tools, made unique by a ``#n`` suffix where two would clash."""
    labels: list[str] = []
    for tool in tools:
        label, n = tool_label(tool), 2
        while label in labels:
            label = f"{tool_label(tool)}#{n}"
            n += 1
        labels.append(label)
    return labels


# --- parsing -----------------------------------------------------------------

_TOKEN = re.compile(r"\s*(?:(?P<punct>[\[\],@])|(?P<name>[^\s\[\],@]+))")
_SHORTHAND = re.compile(r"^(?P<model>.+)_(?P<k>\d+)$")


def _tokens(text: str) -> list[str]:
    tokens: list[str] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:  # pragma: no cover - every character is punct, name or space
            raise StructureError(f"cannot read structure {text!r} at position {pos}")
        tokens.append(match.group("punct") or match.group("name"))
        pos = match.end()
    return tokens


def _leaf(name: str, known: Collection[str] | None) -> Node:
    if known is None or name in known:
        return ModelNode(name=name)
    short = _SHORTHAND.match(name)
    if short and short.group("model") in known:
        return x_k(short.group("model"), int(short.group("k")))
    raise StructureError(f"unknown model {name!r} in structure; known: {sorted(known)}")


def parse_structure(text: str, known: Collection[str] | None = None) -> Node:
    """Read the notation into a tree; with ``known`` model names, unknown names are errors."""
    tokens = _tokens(text)
    if not tokens:
        raise StructureError("empty structure")
    pos = 0

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def take(expected: str | None = None, what: str = "more") -> str:
        nonlocal pos
        token = peek()
        if token is None:
            raise StructureError(f"structure {text!r} ends early; expected {expected or what}")
        if expected is not None and token != expected:
            raise StructureError(f"structure {text!r}: expected {expected!r}, got {token!r}")
        pos += 1
        return token

    def name() -> str:
        token = take(what="a model name")
        if token in ("[", "]", ",", "@"):
            raise StructureError(f"structure {text!r}: expected a model name, got {token!r}")
        return token

    def node() -> Node:
        token = name()
        if token != "Agent" or peek() not in ("[", "@"):
            return _leaf(token, known)
        model = None
        if peek() == "@":
            take("@")
            model = name()
        take("[")
        tools = [node()]
        while peek() == ",":
            take(",")
            tools.append(node())
        take("]")
        if peek() == "@":
            if model is not None:
                raise StructureError(f"structure {text!r}: an agent names its model twice")
            take("@")
            model = name()
        if model is not None and known is not None and model not in known:
            raise StructureError(f"unknown orchestrating model {model!r}; known: {sorted(known)}")
        return agent(tools, model)

    tree = node()
    if pos != len(tokens):
        raise StructureError(f"structure {text!r}: unexpected {tokens[pos]!r} after the end")
    return tree
