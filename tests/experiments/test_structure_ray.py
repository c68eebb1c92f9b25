"""spawn_for_run on Ray: a two-layer structure over model actors with the gold fake backend."""

from __future__ import annotations

import asyncio

import pytest

from actors.handles import actor_key
from experiments.runtime.agent_tree import spawn_for_run
from experiments.runtime.spawn import spawn_model
from orchestrators.base import Collaborators
from orchestrators.stacking import stacking
from protocols.config import ExperimentConfig, ModelSpec, StackingConfig, StoreSpec
from protocols.messages import Problem, totals_of

STRUCTURE = "Agent[A-1.5b_x, B.v2_1]@A-1.5b_x"
PROBLEM = Problem(id="p1", benchmark="math500", question="What is 1+1?", reference="2", answer_format="boxed")


def config() -> ExperimentConfig:
    return ExperimentConfig(
        models=(ModelSpec(name="A-1.5b_x", backend="fake"), ModelSpec(name="B.v2", backend="fake")),
        orchestrator=StackingConfig(structure=STRUCTURE),
    )


@pytest.mark.ray
def test_spawn_for_run_builds_a_working_tree_and_shares_named_agents(ray_session: None) -> None:
    import ray

    cfg = config()
    # The gold fake: as agent it calls each uncalled tool, then answers; as solver it answers 2.
    handles = {m.name: spawn_model(m, 0, StoreSpec(), None) for m in cfg.models}
    first = spawn_for_run(cfg, handles)
    again = spawn_for_run(cfg, handles)
    assert actor_key(first["root"].handle) == actor_key(again["root"].handle)  # the same named actor

    collab = Collaborators(models={}, grader=None, tools={"root": first["root"]})  # type: ignore[arg-type]
    outcome = asyncio.run(stacking(PROBLEM, cfg.orchestrator, collab))  # type: ignore[arg-type]
    assert outcome.error is None and outcome.answer == "2"
    # root: 3 agent calls + A as tool (1); B.v2_1: 2 agent calls + B.v2 as tool (1)
    assert totals_of(outcome.trace).calls == 7
    assert set(outcome.details["per_layer"]) == {"layer_0", "layer_1", "layer_2"}
    for handle in handles.values():
        ray.kill(handle)  # type: ignore[arg-type]
