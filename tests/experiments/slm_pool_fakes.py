"""Hand-made sample pools for the SLM-MUX study tests."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from experiments.studies.slm_mux.config import PoolSpec
from experiments.studies.slm_mux.sample_pool import (
    Pool,
    PoolEntry,
    PoolMeta,
    PoolSample,
    entry_from_samples,
    sample_pairs,
)
from orchestrators.base import Collaborators
from orchestrators.single import self_consistency
from protocols.config import SelfConsistencyConfig
from protocols.messages import Problem


def entry(
    pid: str, samples: Mapping[str, Sequence[int | None]], correct: Sequence[int] = (0,), tokens: int = 10
) -> PoolEntry:
    """A problem whose models drew the given answer labels; ``correct`` lists the right labels."""
    return PoolEntry(
        problem_id=pid,
        index=0,
        benchmark="math500",
        reference="r",
        correct_labels=tuple(correct),
        samples={
            m: tuple(
                PoolSample(
                    i=i,
                    answer=None if lab is None else f"a{lab}",
                    label=lab,
                    correct=lab is not None and lab in correct,
                    prompt_tokens=tokens // 2,
                    completion_tokens=tokens - tokens // 2,
                    cost_usd=0.001,
                    source="sim",
                )
                for i, lab in enumerate(labels)
            )
            for m, labels in samples.items()
        },
    )


def pool_of(entries: Sequence[PoolEntry], k: int, path: str = "/tmp/pool.jsonl") -> Pool:
    models = tuple(entries[0].samples)
    meta = PoolMeta(
        name="t",
        dataset="math500",
        models=models,
        k=k,
        temperature=0.5,
        seed=0,
        n_problems=len(entries),
        model_calls=len(entries) * len(models) * k,
        sources={"sim": 1},
    )
    return Pool(meta=meta, entries=tuple(entries), path=path)


async def draw_pool_in_process(
    problems: Sequence[Problem],
    collab: Collaborators,
    models: Sequence[str],
    pool: PoolSpec,
    *,
    concurrency: int = 32,
) -> tuple[list[PoolEntry], int]:
    """Draw the pool without Ray (tests, small studies): models are ``collab.models``.

    Returns the entries and the number of model calls made.
    """
    sem = asyncio.Semaphore(concurrency)
    entries: list[PoolEntry | None] = [None] * len(problems)
    calls = 0

    async def one(index: int, problem: Problem) -> None:
        nonlocal calls
        async with sem:
            per_model = {}
            for model in models:
                config = SelfConsistencyConfig(
                    model=model,
                    k=pool.k,
                    temperature=pool.temperature,
                    max_tokens=pool.max_tokens,
                    prompt_style=pool.prompt_style,
                    shots=pool.shots,
                )
                out = await self_consistency(problem, config, collab)
                per_model[model] = sample_pairs(out.trace, out.details)
                calls += len(per_model[model])
            entries[index] = await entry_from_samples(problem, index, per_model, collab.grader)

    async with asyncio.TaskGroup() as group:
        for index, problem in enumerate(problems):
            group.create_task(one(index, problem))
    return [e for e in entries if e is not None], calls
