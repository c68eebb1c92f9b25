"""Where a run's actors go on a multi-node cluster, and how calls find a local model replica.

The scheduling strategy (documented in docs/cluster.md):

* **Runner actors** use Ray's ``SPREAD`` strategy (``run.runner_strategy``), so N runners
  land on N different nodes when there are that many; ``run.runner_resources`` restricts
  them to nodes offering those custom resources.
* **Model actors**: ``replicas: K`` per model places K actors round-robin over the alive
  nodes that offer the model's ``resources``; ``replicas: per_node`` places one on each
  such node. Each placement prefers its node with a fallback to any node: if that node is
  lost, Ray restarts the replica (it is supervised) elsewhere instead of waiting for it.
* **Routing**: a runner's orchestrator calls a ``ReplicaSet``, which sends each call to a
  replica on the runner's own node (round-robin when several), or to any replica when
  none is local. Replicas are interchangeable: a completion is a function of its request
  (simulator) or recorded in the shared store (live), so routing never changes a result.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

from protocols.config import ModelSpec
from protocols.messages import Completion, CompletionRequest, Failure


def alive_nodes() -> list[dict[str, Any]]:
    """The cluster's alive nodes (``ray.nodes()`` entries), head first, in a stable order."""
    import ray

    nodes = [n for n in ray.nodes() if n.get("Alive")]
    return sorted(nodes, key=lambda n: (not n.get("Resources", {}).get("node:__internal_head__"), n["NodeID"]))


def offers(node: Mapping[str, Any], resources: Mapping[str, float]) -> bool:
    """True if the node was started with at least ``resources`` (custom resources, CPUs...)."""
    have = node.get("Resources", {})
    return all(have.get(name, 0.0) >= amount for name, amount in resources.items())


def replica_nodes(spec: ModelSpec, nodes: list[dict[str, Any]]) -> list[str | None]:
    """The node id each replica of ``spec`` is placed on (None: let Ray choose).

    Raises ValueError (one line) when no alive node offers the model's resources.
    """
    eligible = [n["NodeID"] for n in nodes if offers(n, spec.resources)]
    if not eligible:
        if spec.resources and nodes:
            known = sorted({k for n in nodes for k in n.get("Resources", {}) if not k.startswith("node:")})
            raise ValueError(
                f"model {spec.name!r}: no alive node offers resources {dict(spec.resources)} (nodes offer {known})"
            )
        count = 1 if spec.replicas == "per_node" else int(spec.replicas)
        return [None] * count
    if spec.replicas == "per_node":
        return list(eligible)
    return [eligible[i % len(eligible)] for i in range(int(spec.replicas))]


def check_runner_resources(resources: Mapping[str, float], nodes: list[dict[str, Any]]) -> None:
    """A runner that asks for resources no node has would wait forever: say so instead."""
    if resources and nodes and not any(offers(n, resources) for n in nodes):
        raise ValueError(f"run.runner_resources {dict(resources)}: no alive node offers them")


def affinity(node_id: str | None) -> dict[str, Any]:
    """Actor options preferring ``node_id``, falling back to any node (restarts after a node loss).

    A label selector on Ray's own ``ray.io/node-id`` label with an empty fallback: Ray
    2.60's *soft* ``NodeAffinitySchedulingStrategy`` does not keep 0-CPU actors on the
    node asked for (measured: 2 of 3 went elsewhere), the selector does.
    """
    if node_id is None:
        return {}
    return {"label_selector": {"ray.io/node-id": node_id}, "fallback_strategy": [{"label_selector": {}}]}


class ReplicaSet:
    """A model served by several model actors; each call goes to a replica on the caller's node.

    Picklable (node ids and actor handles); the local choice is made lazily in the
    process that calls it, i.e. in the runner actor on its node.
    """

    def __init__(self, name: str, replicas: list[tuple[str | None, Any]], immediate: bool = False) -> None:
        if not replicas:
            raise ValueError(f"model {name!r}: a replica set needs at least one replica")
        self.name = name
        self.immediate = immediate  # replies never wait on latency (see ``BatchingRemoteModel``)
        self.replicas = list(replicas)
        self._cycle: Any = None
        self.local = 0

    def __getstate__(self) -> dict[str, Any]:
        return {"name": self.name, "replicas": self.replicas, "immediate": self.immediate, "_cycle": None, "local": 0}

    @property
    def handles(self) -> list[Any]:
        return [h for _, h in self.replicas]

    def _choose(self) -> Any:
        if self._cycle is None:
            import ray

            from actors.model import BatchingRemoteModel

            here = ray.get_runtime_context().get_node_id() if ray.is_initialized() else None
            local = [h for node, h in self.replicas if node is not None and node == here]
            self.local = len(local)
            chosen = local or self.handles
            self._cycle = itertools.cycle([BatchingRemoteModel(h, self.name, self.immediate) for h in chosen])
        return next(self._cycle)

    async def complete(self, request: CompletionRequest) -> Completion | Failure:
        return await self._choose().complete(request)  # type: ignore[no-any-return]
