"""Running orchestrators on in-process sim models and scoring them: the set-up the simulator studies share.

The orchestration fit (``orch_fit``), the validation report (``validate``, ``figures``) and
the validation-accuracy helper all run the real orchestrators on ``SimBackend`` models of
the SLM-MUX paper's trio, graded by the real graders' extraction and exact fast path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from actors.backends.sim.backend import SimBackend
from actors.backends.sim.cards import SimCards
from datasets import grader_for
from datasets.grading.math import fast_equiv
from orchestrators.base import Collaborators
from orchestrators.dispatch import run_orchestrator
from protocols.config import ModelSpec, OrchestratorConfig
from protocols.messages import Grade, Problem

TRIO = ("Llama-3.1-8B-Instruct", "Mixtral-8x7B-Instruct", "Gemma-2-27B-Instruct")
"""The SLM-MUX paper's three small models (Table 1), in the paper's order."""


class FastGrader:
    """The real graders' extraction and exact fast path (undecided MATH pairs count as different)."""

    async def extract(self, problem: Problem, text: str) -> str | None:
        return await grader_for(problem.answer_format).extract(problem, text)

    async def equivalent(self, problem: Problem, a: str, b: str) -> bool:
        if problem.answer_format in ("boxed", "free"):
            return bool(fast_equiv(a, b))
        return await grader_for(problem.answer_format).equivalent(problem, a, b)

    async def grade(self, problem: Problem, text: str) -> Grade:
        answer = await self.extract(problem, text)
        right = answer is not None and await self.equivalent(problem, problem.reference, answer)
        return Grade(extracted=answer, correct=right)


def sim_collaborators(cards: SimCards | None, seed: int, names: Sequence[str] = TRIO) -> Collaborators:
    """In-process sim backends for ``names`` (default cards if ``cards`` is None) and a ``FastGrader``."""
    models = {n: SimBackend(ModelSpec(name=n), seed, cards) for n in names}
    return Collaborators(models=models, grader=FastGrader(), seed=seed)


async def accuracy(config: OrchestratorConfig, problems: Sequence[Problem], collab: Collaborators) -> float:
    """Percent of ``problems`` the orchestrator gets right (a failed outcome counts as wrong)."""
    outcomes = await asyncio.gather(*(run_orchestrator(config, p, collab) for p in problems))
    right = 0
    for p, o in zip(problems, outcomes, strict=True):
        right += o.final_text is not None and (await collab.grader.grade(p, o.final_text)).correct
    return 100.0 * right / len(problems)
