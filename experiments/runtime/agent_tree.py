"""A stacking structure built into agent actors: one named ``AgentActor`` per agent node.

The structure grammar is ``orchestrators.stacking_structure`` (pure); the actor itself is
created by its facade, ``actors.agent.RemoteTool.spawn``.
"""

from __future__ import annotations

import hashlib
from typing import Any

from actors.agent import ModelTool, RemoteTool
from actors.handles import actor_key
from actors.model import RemoteModel
from datasets import grader_for
from experiments.runtime.placement import ReplicaSet
from experiments.runtime.spawn import ACTOR_CPUS, supervised
from orchestrators.react import ask_model, react_loop
from orchestrators.stacking_structure import (
    ModelNode,
    Node,
    StructureError,
    layer_of,
    models_of,
    parse_structure,
    render,
    tool_label,
    tool_labels,
)
from protocols.config import ExperimentConfig, StackingConfig


def actor_name(node: Node, config: StackingConfig, seed: int, model_ids: dict[str, str]) -> str:
    """A Ray actor name that is the same exactly when the agent would behave the same.

    It covers the subtree, the loop settings, the seed and the model actors used, so
    runs of a search sharing a model pool share the agents of common subtrees.
    """
    settings = config.model_dump_json(exclude={"structure"})
    used = ",".join(f"{m}={model_ids.get(m, '')}" for m in sorted(models_of(node)))
    digest = hashlib.sha256(f"{render(node)}|{settings}|{seed}|{used}".encode()).hexdigest()[:20]
    return f"stack-agent-{digest}"


def _model_key(handle: Any) -> str:
    """A ``ReplicaSet`` (``replicas:`` > 1) is known by its first replica."""
    return actor_key(handle.handles[0] if isinstance(handle, ReplicaSet) else handle)


def _as_model(handle: Any, name: str) -> Any:
    """A model actor handle as a ``Model``; a ``ReplicaSet`` already is one."""
    return handle if isinstance(handle, ReplicaSet) else RemoteModel(handle, name)


def spawn_for_run(config: ExperimentConfig, model_handles: dict[str, Any]) -> dict[str, Any]:
    """Build the config's structure into agent actors; returns ``{"root": <Tool>}``.

    Each agent node is one actor whose tools are other agent actors (``RemoteTool``)
    or raw models (``ModelTool`` over the shared model actor). Agents are named
    actors (``get_if_exists``), so identical subtrees are one actor across the runs of
    a search while any caller holds a handle. A structure that is a bare model (X_0)
    needs no agent actor: its root is a ``ModelTool``.
    """
    stacking = config.orchestrator
    if not isinstance(stacking, StackingConfig):
        raise StructureError(f"spawn_for_run needs a stacking config, got {stacking.kind!r}")
    tree = parse_structure(stacking.structure, known=[m.name for m in config.models])
    missing = sorted(models_of(tree) - set(model_handles))
    if missing:
        raise StructureError(f"structure {stacking.structure!r} uses model(s) {missing} with no model actor")
    model_ids = {name: _model_key(h) for name, h in model_handles.items()}
    # Supervised like model actors: a ReAct step is a pure function of its request chain
    # (models answer by request), so a re-submitted call is safe.
    options = {"num_cpus": ACTOR_CPUS, "max_concurrency": 1000, **supervised(config.run.actor_restarts)}

    def model_tool(name: str) -> ModelTool:
        return ModelTool(name, _as_model(model_handles[name], name), ask_model, grader_for, stacking, config.seed)

    def build(node: Node, label: str) -> ModelTool | RemoteTool:
        if isinstance(node, ModelNode):
            return model_tool(node.name)
        tools = {tool: build(t, tool) for tool, t in zip(tool_labels(node.tools), node.tools, strict=True)}
        return RemoteTool.spawn(
            actor_name(node, stacking, config.seed, model_ids),
            options,
            tool_label(node),
            layer_of(node),
            node.model,
            _as_model(model_handles[node.model], node.model),
            tools,
            react_loop,
            grader_for,
            stacking,
            config.seed,
            name=label,
        )

    return {"root": build(tree, "agent")}
