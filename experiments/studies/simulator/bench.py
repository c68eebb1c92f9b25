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
from protocols.config import ModelSpec, OrchestratorConfig, SelfConsistencyConfig
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


async def validation_accuracies(
    cards: SimCards, split_problems: int = 300, temperature: float = 0.5, seed: int = 0
) -> dict[str, float]:
    """SIMULATED single-sample accuracy of the trio on the first GSM8K *train* problems at T = 0.5.

    The SLM-MUX tie-break must come from a split disjoint from test (the paper measured its
    MATH validation accuracies on the MATH training set at T = 0.5); GSM8K ships its train split.
    """
    from datasets import load_problems
    from protocols.config import DatasetSpec

    problems = load_problems(DatasetSpec(name="gsm8k", split="train", limit=split_problems))
    collab = sim_collaborators(cards, seed)
    out = {}
    for name in TRIO:
        config = SelfConsistencyConfig(model=name, k=1, temperature=temperature)
        out[name] = round(await accuracy(config, problems, collab) / 100.0, 3)
    return out
