"""The algorithms: pure async code over collaborator interfaces (no ray import)."""

from orchestrators.base import Collaborators, Outcome
from orchestrators.dispatch import run_orchestrator

__all__ = ["Collaborators", "Outcome", "run_orchestrator"]
