"""Route an orchestrator config to its function: one ``match``, no registry magic."""

from __future__ import annotations

from orchestrators.base import Collaborators, Outcome
from protocols.config import (
    AgentForestConfig,
    DebateConfig,
    MavConfig,
    MoAConfig,
    OrchestratorConfig,
    SelfConsistencyConfig,
    SingleConfig,
    SlmMuxConfig,
    StackingConfig,
)
from protocols.messages import Problem


async def run_orchestrator(config: OrchestratorConfig, problem: Problem, collab: Collaborators) -> Outcome:
    """Run the orchestrator ``config`` names on one problem."""
    # Imports are local so a unit test of one orchestrator loads only that module.
    match config:
        case SingleConfig():
            from orchestrators.single import single

            return await single(problem, config, collab)
        case SelfConsistencyConfig():
            from orchestrators.single import self_consistency

            return await self_consistency(problem, config, collab)
        case SlmMuxConfig():
            from orchestrators.slm_mux import slm_mux

            return await slm_mux(problem, config, collab)
        case AgentForestConfig():
            from orchestrators.agent_forest import agent_forest

            return await agent_forest(problem, config, collab)
        case MoAConfig():
            from orchestrators.moa import moa

            return await moa(problem, config, collab)
        case DebateConfig():
            from orchestrators.debate import debate

            return await debate(problem, config, collab)
        case MavConfig():
            from orchestrators.mav import mav

            return await mav(problem, config, collab)
        case StackingConfig():
            from orchestrators.stacking import stacking

            return await stacking(problem, config, collab)
    raise TypeError(f"unknown orchestrator config {type(config).__name__!r}")
