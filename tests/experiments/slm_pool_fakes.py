"""Hand-made sample pools for the SLM-MUX study tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from experiments.studies.slm_mux.sample_pool import Pool, PoolEntry, PoolMeta, PoolSample


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
