"""spawn_for_run on Ray: a two-layer structure over model actors with the gold fake backend."""

from __future__ import annotations

import asyncio

import pytest

from actors.agent import RemoteTool
from orchestrators.base import Collaborators
from orchestrators.stacking import stacking
from protocols.config import ExperimentConfig, ModelSpec, StackingConfig
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

    from actors.model import ModelActor
    from experiments.studies.stacking.structure import spawn_for_run

    cfg = config()
    # The gold fake: as agent it calls each uncalled tool, then answers; as solver it answers 2.
    handles = {m.name: ray.remote(ModelActor).options(num_cpus=0).remote(m, 0) for m in cfg.models}
    first = spawn_for_run(cfg, handles)
    again = spawn_for_run(cfg, handles)
    assert first["root"]._actor_id == again["root"]._actor_id  # the same named actor

    collab = Collaborators(models={}, grader=None, tools={"root": RemoteTool(first["root"])})  # type: ignore[arg-type]
    outcome = asyncio.run(stacking(PROBLEM, cfg.orchestrator, collab))  # type: ignore[arg-type]
    assert outcome.error is None and outcome.answer == "2"
    # root: 3 agent calls + A as tool (1); B.v2_1: 2 agent calls + B.v2 as tool (1)
    assert totals_of(outcome.trace).calls == 7
    assert set(outcome.details["per_layer"]) == {"layer_0", "layer_1", "layer_2"}
    for handle in handles.values():
        ray.kill(handle)  # type: ignore[arg-type]
