"""Merge sample pools drawn apart (same problems, k, temperature, seed) into one pool of all their models.

    slmsim pool-merge OUT_DIR POOL_DIR POOL_DIR [...]

Why: a pool member recorded on another day, on another server, or under another prompt
(``pool.shots``, ``pool.prompt_style`` are per pool) is drawn by its own ``slmsim pool``
run; SLM-MUX and Agent Forest need every model's samples of a problem side by side. The
merge keeps every sample as recorded (answer, tokens, cost, ``source``, error) and redoes
only what depends on the other members: the answer classes of each problem are regrouped
over all models' samples with the benchmark's grader, in the order ``draw_pool`` groups
them (models in the order given, samples by index), so the merged pool is the one a
single ``slmsim pool`` over all the models would have written from the same samples. A
sample whose correctness would change under the regrouping is a grader disagreement, not
something to paper over: the merge stops with the problem's id.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from datasets import grader_for
from experiments.studies.slm_mux.sample_pool import Pool, PoolEntry, PoolMeta, PoolSample, read_pool, write_pool
from orchestrators.voting import group_answers
from protocols.interfaces import Grader
from protocols.messages import Problem

ANSWER_FORMAT = {"gsm8k": "gsm8k", "gpqa": "letter"}
"""A pool entry's answer format by benchmark (every other benchmark is graded as ``boxed``)."""


def check_compatible(pools: Sequence[Pool]) -> None:
    """Pools merge only if they are draws of the same problems under the same sampling settings."""
    if len(pools) < 2:
        raise ValueError("pool-merge needs at least two pools")
    first = pools[0]
    seen: dict[str, Path] = {}
    for pool in pools:
        for model in pool.meta.models:
            if model in seen:
                raise ValueError(f"model {model!r} is in both {str(seen[model])!r} and {str(pool.path)!r}")
            seen[model] = pool.path
        mine = (pool.meta.k, pool.meta.temperature, pool.meta.seed, pool.meta.dataset)
        theirs = (first.meta.k, first.meta.temperature, first.meta.seed, first.meta.dataset)
        if mine != theirs:
            raise ValueError(
                f"{str(pool.path)!r} was drawn as (k, T, seed, dataset)={mine}, {str(first.path)!r} as {theirs}"
            )
        ours = [(e.problem_id, e.reference) for e in pool.entries]
        if ours != [(e.problem_id, e.reference) for e in first.entries]:
            raise ValueError(f"{str(pool.path)!r} does not hold the problems of {str(first.path)!r} in the same order")


def _problem(entry: PoolEntry) -> Problem:
    return Problem(
        id=entry.problem_id,
        benchmark=entry.benchmark,
        question=f"(pool problem {entry.problem_id})",
        reference=entry.reference,
        answer_format=ANSWER_FORMAT.get(entry.benchmark, "boxed"),  # type: ignore[arg-type]
        domain=entry.domain,
        level=entry.level,
    )


async def merge_entry(parts: Sequence[PoolEntry], grader: Grader) -> PoolEntry:
    """One problem's entries from several pools -> one entry, its answer classes regrouped over all samples."""
    head = parts[0]
    problem = _problem(head)
    order = [(model, s) for part in parts for model, samples in part.samples.items() for s in samples]

    async def equivalent(a: str, b: str) -> bool:
        return await grader.equivalent(problem, a, b)

    groups = await group_answers([s.answer for _, s in order], equivalent)
    correct_labels: tuple[int, ...] = ()
    for class_label, rep in enumerate(groups.representatives):
        if await grader.equivalent(problem, rep, problem.reference):
            correct_labels += (class_label,)
    merged: dict[str, list[PoolSample]] = {model: [] for part in parts for model in part.samples}
    for (model, sample), label in zip(order, groups.labels, strict=True):
        correct = label is not None and label in correct_labels
        if correct != sample.correct:
            raise ValueError(
                f"problem {head.problem_id!r}: {model!r} sample {sample.i} ({sample.answer!r}) was graded "
                f"correct={sample.correct} when drawn and {correct} after the merge"
            )
        merged[model].append(sample.model_copy(update={"label": label}))
    return head.model_copy(
        update={
            "classes": groups.representatives,
            "correct_labels": correct_labels,
            "samples": {m: tuple(v) for m, v in merged.items()},
        }
    )


def merged_meta(pools: Sequence[Pool]) -> PoolMeta:
    """The merged pool's meta: every member, calls, sources and run directories summed."""
    first = pools[0].meta
    sources: dict[str, int] = {}
    for pool in pools:
        for source, count in pool.meta.sources.items():
            sources[source] = sources.get(source, 0) + count
    return first.model_copy(
        update={
            "models": tuple(m for p in pools for m in p.meta.models),
            "model_calls": sum(p.meta.model_calls for p in pools),
            "sources": sources,
            "runs": {m: r for p in pools for m, r in p.meta.runs.items()},
            "wall_s": sum(p.meta.wall_s for p in pools),
        }
    )


async def merge_pools(dirs: Sequence[Path], out: Path) -> PoolMeta:
    """Read the pools at ``dirs``, merge them, write ``pool.jsonl`` + ``pool_meta.json`` into ``out``."""
    if any(out.resolve() == d.resolve() for d in dirs):
        raise ValueError(f"the output {str(out)!r} is one of the pools; write the merge elsewhere")
    pools = [read_pool(d) for d in dirs]
    check_compatible(pools)
    graders: dict[str, Grader] = {}
    entries = []
    for parts in zip(*(p.entries for p in pools), strict=True):
        fmt = ANSWER_FORMAT.get(parts[0].benchmark, "boxed")
        grader = graders.setdefault(fmt, grader_for(fmt))
        entries.append(await merge_entry(parts, grader))
    meta = merged_meta(pools)
    write_pool(out, entries, meta)
    return meta


def merge(dirs: Sequence[Path], out: Path) -> PoolMeta:
    return asyncio.run(merge_pools(dirs, out))
