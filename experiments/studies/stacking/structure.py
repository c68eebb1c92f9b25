"""Stacking structures as data: a tree of agents over models, its notation, and its actors.

Notation: a model name is a raw model (``X_0``); ``Agent[T1, T2, ...]@M`` is an agent
orchestrated by model ``M`` whose tools are ``T1, T2, ...`` (``Agent@M[...]`` reads the
same). Without ``@M`` the orchestrator is the base model of the first tool (the
anchor), never an implicit frontier model. Given the known model names, ``X_k``
(a known model name, ``_``, a number) is shorthand for ``X_1 = Agent[X_0]@X``,
``X_k = Agent[X_0, X_{k-1}]@X``.
Model names may hold any character but whitespace and ``[ ] , @``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection
from typing import Annotated, Any, Literal

from pydantic import Field

from protocols.config import ExperimentConfig, StackingConfig, Strict


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


# --- actors ------------------------------------------------------------------


def actor_name(node: Node, config: StackingConfig, seed: int, model_ids: dict[str, str]) -> str:
    """A Ray actor name that is the same exactly when the agent would behave the same.

    It covers the subtree, the loop settings, the seed and the model actors used, so
    runs of a search sharing a model pool share the agents of common subtrees.
    """
    settings = config.model_dump_json(exclude={"structure"})
    used = ",".join(f"{m}={model_ids.get(m, '')}" for m in sorted(models_of(node)))
    digest = hashlib.sha256(f"{render(node)}|{settings}|{seed}|{used}".encode()).hexdigest()[:20]
    return f"stack-agent-{digest}"


def _handle_id(handle: Any) -> str:
    handle = getattr(handle, "handles", [handle])[0]  # a ReplicaSet: named by its first replica
    actor_id = getattr(handle, "_actor_id", None)
    return actor_id.hex() if actor_id is not None else str(id(handle))


def _as_model(handle: Any, name: str) -> Any:
    """A model actor handle as a ``Model``; a ``ReplicaSet`` (``replicas:`` > 1) already is one."""
    from actors.model import RemoteModel
    from experiments.runtime.placement import ReplicaSet

    return handle if isinstance(handle, ReplicaSet) else RemoteModel(handle, name)


def spawn_for_run(config: ExperimentConfig, model_handles: dict[str, Any]) -> dict[str, Any]:
    """Build the config's structure into agent actors; returns ``{"root": <handle or tool>}``.

    Each agent node is one actor whose tools are other agent actors (``RemoteTool``)
    or raw models (``ModelTool`` over the shared model actor). Agents are named
    actors (``get_if_exists``), so identical subtrees are one actor across the runs of
    a search while any caller holds a handle. A structure that is a bare model (X_0)
    needs no agent actor: its root is a ``ModelTool``.
    """
    import ray

    from actors.agent import AgentActor, ModelTool, RemoteTool
    from datasets import grader_for
    from experiments.runtime.spawn import ACTOR_CPUS, supervised
    from orchestrators.react import ask_model, react_loop

    stacking = config.orchestrator
    if not isinstance(stacking, StackingConfig):
        raise StructureError(f"spawn_for_run needs a stacking config, got {stacking.kind!r}")
    tree = parse_structure(stacking.structure, known=[m.name for m in config.models])
    missing = sorted(models_of(tree) - set(model_handles))
    if missing:
        raise StructureError(f"structure {stacking.structure!r} uses model(s) {missing} with no model actor")
    model_ids = {name: _handle_id(h) for name, h in model_handles.items()}

    def model_tool(name: str) -> ModelTool:
        remote = _as_model(model_handles[name], name)
        return ModelTool(name, remote, ask_model, grader_for, stacking, config.seed)

    def build(node: Node) -> Any:
        if isinstance(node, ModelNode):
            return model_tool(node.name)
        tools = {
            label: (model_tool(t.name) if isinstance(t, ModelNode) else RemoteTool(build(t), label))
            for label, t in zip(tool_labels(node.tools), node.tools, strict=True)
        }
        return (
            ray.remote(AgentActor)
            .options(
                name=actor_name(node, stacking, config.seed, model_ids),
                get_if_exists=True,
                num_cpus=ACTOR_CPUS,
                max_concurrency=1000,
                # Supervised like model actors: a ReAct step is a pure function of its
                # request chain (models answer by request), so a re-submitted call is safe.
                **supervised(config.run.actor_restarts),
            )
            .remote(
                tool_label(node),
                layer_of(node),
                node.model,
                _as_model(model_handles[node.model], node.model),
                tools,
                react_loop,
                grader_for,
                stacking,
                config.seed,
            )
        )

    return {"root": build(tree)}
