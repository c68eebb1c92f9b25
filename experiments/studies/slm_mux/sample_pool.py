"""The SLM-MUX sample pool: k samples per (model, problem), drawn once, stored, reused by every study.

Design. The pool is drawn by running the ordinary self-consistency orchestrator with
``k = pool.k`` for each model through ``run_experiment_async`` (model actors, runner
actors, the response store, resume — nothing special-cased): each model's run
directory keeps every sample's full text in its trace. ``pool.jsonl`` is then built
from those results: per problem, per model, per sample: the extracted answer, its
equivalence class across *all* models' samples of the problem (the grader's
equivalence), whether that class is correct, tokens, cost and source. Searches and
sweeps read only ``pool.jsonl``; they never call a model (``model_calls: 0``).

Sample i of a model is the same draw whichever study reads it, so "the first k
samples" of a model is a valid k-sample run for every k <= pool.k.

``slmsim pool CONFIG.yaml [key=value ...]`` draws (or resumes) the pool.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import re
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError

from experiments.runtime.errors import guarded
from orchestrators.base import Collaborators
from orchestrators.single import self_consistency
from orchestrators.voting import group_answers
from protocols.config import (
    DatasetSpec,
    ExperimentConfig,
    ModelSpec,
    RunSpec,
    SelfConsistencyConfig,
    StoreSpec,
    Strict,
)
from protocols.interfaces import Grader
from protocols.messages import CallRecord, Completion, Failure, Problem, TraceEvent

POOL_FILE = "pool.jsonl"
POOL_META = "pool_meta.json"


class PoolSpec(Strict):
    """How the pool is drawn."""

    k: int = Field(default=9, ge=1, le=64)
    temperature: float = Field(default=0.5, ge=0.0, le=2.0)
    max_tokens: int | None = Field(default=None, gt=0)
    prompt_style: Literal["chat", "few_shot"] = "chat"
    """``few_shot``: a plain completions prompt with ``shots`` worked examples (base models)."""
    shots: int = Field(default=4, ge=0, le=16)


class SplitSpec(Strict):
    """The validation/test split of the pool's problems (by a seeded hash of the problem id)."""

    validation_fraction: float = Field(default=0.5, gt=0.0, lt=1.0)
    seed: int = 0


class SelectionSpec(Strict):
    """Model-selection search (``experiments.studies.slm_mux.selection``)."""

    sizes: tuple[int, ...] = (2, 3, 4, 5)
    k: int = Field(default=3, ge=1)
    lam: float = Field(default=1.0, ge=0.0)
    """The weight of the contradiction penalty."""
    confident_threshold: float = Field(default=1.0, gt=0.0, le=1.0)
    """A model is "consistently wrong" when its top answer is wrong with at least this confidence."""
    folds: int = Field(default=5, ge=2, le=50)
    objective: Literal["union_contradiction", "mux_cv"] = "union_contradiction"
    top: int = Field(default=20, ge=1)


class SweepSpec(Strict):
    """Test-time scaling sweeps (``experiments.studies.slm_mux.sweep``)."""

    models: tuple[str, ...] | None = None
    """The subset swept over k; None: all pool models."""
    k_values: tuple[int, ...] | None = None
    """None: 1..pool.k."""
    k_for_models: int | None = None
    """k of the number-of-models sweep; None: the k chosen on validation."""


class StudyConfig(Strict):
    """An SLM-MUX study: one pool of samples and the searches and sweeps computed from it."""

    name: str = "slm_mux_study"
    seed: int = 0
    dataset: DatasetSpec = Field(default_factory=DatasetSpec)
    models: tuple[ModelSpec, ...] = Field(min_length=1)
    pool: PoolSpec = Field(default_factory=PoolSpec)
    split: SplitSpec = Field(default_factory=SplitSpec)
    selection: SelectionSpec = Field(default_factory=SelectionSpec)
    sweep: SweepSpec = Field(default_factory=SweepSpec)
    run: RunSpec = Field(default_factory=RunSpec)
    store: StoreSpec = Field(default_factory=StoreSpec)
    backend: dict[str, Any] | None = None
    """Unused by the code: the holder of the YAML anchor the models merge (``<<: *backend``)."""

    @property
    def model_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.models)


def load_study(path: str | Path, overrides: Sequence[str] = ()) -> StudyConfig:
    """YAML + ``key=value`` overrides -> a validated study config (one-line error otherwise)."""
    from experiments.runtime.config_io import load_model

    return load_model(StudyConfig, path, overrides)


# --- the pool's records ------------------------------------------------------------


class PoolSample(Strict):
    """One stored sample: its answer, answer class, correctness and cost."""

    i: int
    answer: str | None
    label: int | None
    """Equivalence class among all samples of the problem (None: abstention)."""
    correct: bool
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    source: str | None = None
    error: str | None = None

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class PoolEntry(Strict):
    """All models' samples of one problem."""

    problem_id: str
    index: int
    benchmark: str
    domain: str | None = None
    level: int | None = None
    reference: str
    classes: tuple[str, ...] = ()
    """One representative answer per class label."""
    correct_labels: tuple[int, ...] = ()
    samples: dict[str, tuple[PoolSample, ...]]


class PoolMeta(Strict):
    """What the pool holds and how it was drawn."""

    name: str
    dataset: str
    models: tuple[str, ...]
    k: int
    temperature: float
    seed: int
    n_problems: int
    model_calls: int
    """Model calls made while drawing the pool (studies reading it make none)."""
    sources: dict[str, int] = Field(default_factory=dict)
    runs: dict[str, str] = Field(default_factory=dict)
    """Model -> the run directory its samples came from."""
    wall_s: float = 0.0


def _calls_of(trace: Iterable[TraceEvent]) -> list[CallRecord]:
    return [e for e in trace if isinstance(e, CallRecord)]


async def entry_from_samples(
    problem: Problem,
    index: int,
    per_model: Mapping[str, Sequence[tuple[CallRecord, str | None]]],
    grader: Grader,
) -> PoolEntry:
    """Group every model's answers on one problem, mark the correct classes, build the entry."""
    order = [(model, rec, ans) for model, pairs in per_model.items() for rec, ans in pairs]

    async def equivalent(a: str, b: str) -> bool:
        return await grader.equivalent(problem, a, b)

    groups = await group_answers([ans for _, _, ans in order], equivalent)
    correct_labels: tuple[int, ...] = ()
    for class_label, rep in enumerate(groups.representatives):
        if await grader.equivalent(problem, rep, problem.reference):
            correct_labels += (class_label,)
    samples: dict[str, list[PoolSample]] = {model: [] for model in per_model}
    for (model, rec, ans), label in zip(order, groups.labels, strict=True):
        reply = rec.reply
        samples[model].append(
            PoolSample(
                i=rec.sample_index,
                answer=ans,
                label=label,
                correct=label is not None and label in correct_labels,
                prompt_tokens=reply.usage.prompt_tokens,
                completion_tokens=reply.usage.completion_tokens,
                cost_usd=reply.cost_usd,
                source=reply.source if isinstance(reply, Completion) else None,
                error=reply.error if isinstance(reply, Failure) else None,
            )
        )
    return PoolEntry(
        problem_id=problem.id,
        index=index,
        benchmark=problem.benchmark,
        domain=problem.domain,
        level=problem.level,
        reference=problem.reference,
        classes=groups.representatives,
        correct_labels=correct_labels,
        samples={m: tuple(sorted(v, key=lambda s: s.i)) for m, v in samples.items()},
    )


def _pairs(trace: Sequence[TraceEvent], details: Mapping[str, Any]) -> list[tuple[CallRecord, str | None]]:
    """A self-consistency trace's calls with the answers its orchestrator extracted (same order)."""
    calls = _calls_of(trace)
    answers = list(details.get("answers") or [None] * len(calls))
    if len(answers) != len(calls):
        raise ValueError(f"self-consistency details hold {len(answers)} answers for {len(calls)} calls")
    return list(zip(calls, answers, strict=True))


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
                per_model[model] = _pairs(out.trace, out.details)
                calls += len(per_model[model])
            entries[index] = await entry_from_samples(problem, index, per_model, collab.grader)

    async with asyncio.TaskGroup() as group:
        for index, problem in enumerate(problems):
            group.create_task(one(index, problem))
    return [e for e in entries if e is not None], calls


def slug(text: str) -> str:
    """A file-system-safe name for a model."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)


def pool_run_config(study: StudyConfig, spec: ModelSpec) -> ExperimentConfig:
    """The self-consistency run that draws one model's samples."""
    return ExperimentConfig(
        name=f"{study.name}-pool-{slug(spec.name)}",
        seed=study.seed,
        dataset=study.dataset,
        models=(spec,),
        orchestrator=SelfConsistencyConfig(
            model=spec.name,
            k=study.pool.k,
            temperature=study.pool.temperature,
            max_tokens=study.pool.max_tokens,
            prompt_style=study.pool.prompt_style,
            shots=study.pool.shots,
        ),
        run=study.run.model_copy(update={"out_dir": study.run.out_dir / "pool_runs" / slug(spec.name)}),
        store=study.store.model_copy(update={"path": study.store.path or (study.run.out_dir / "store")}),
    )


async def draw_pool(study: StudyConfig, *, parallel_runs: int = 2) -> PoolMeta:
    """Draw (or resume) every model's samples through the run driver, then write ``pool.jsonl``."""
    from datasets import grader_for
    from experiments.runtime.driver import ModelPool, run_experiment_async
    from experiments.runtime.errors import RunAborted
    from experiments.runtime.preflight import check_run, load_dataset
    from experiments.runtime.results import RESULTS, read_results

    started = time.perf_counter()
    configs = [pool_run_config(study, spec) for spec in study.models]
    for config in configs:
        check_run(config)
    problems = load_dataset(study.dataset)
    models = ModelPool(study.seed, configs[0].store, configs[0].store.path, study.run.actor_restarts)
    sem = asyncio.Semaphore(parallel_runs)
    calls = 0
    still_open: list[str] = []

    async def one(config: ExperimentConfig) -> None:
        nonlocal calls
        async with sem:
            summary = await run_experiment_async(config, models=models, problems=problems)
            calls += summary.calls
            if summary.open_failures or summary.missing:
                still_open.append(f"{config.models[0].name} ({summary.open_failures + summary.missing})")

    try:
        async with asyncio.TaskGroup() as group:
            for config in configs:
                group.create_task(one(config))
    finally:
        if models.handles:
            models.shutdown()
    if still_open:
        # A sample lost to an outage is not an abstention: keep the pool unwritten until it is drawn.
        raise RunAborted(
            f"pool not written: problems still open after transient failures for {', '.join(still_open)}; "
            "re-run the same command to retry them"
        )

    by_model: dict[str, dict[str, Any]] = {}
    for config in configs:
        results, _ = read_results(config.run.out_dir / RESULTS)
        by_model[config.models[0].name] = {r.problem_id: r for r in results}
    graders = {fmt: grader_for(fmt) for fmt in {p.answer_format for p in problems}}
    found: list[PoolEntry | None] = [None] * len(problems)
    # Problems are grouped concurrently so the grader's symbolic worker pool is kept busy.
    gate = asyncio.Semaphore(32)

    async def convert(index: int, problem: Problem) -> None:
        per_model = {}
        for name in study.model_names:
            result = by_model[name].get(problem.id)
            if result is None:
                raise ValueError(f"pool: model {name!r} has no result for problem {problem.id!r}")
            per_model[name] = _pairs(result.trace, result.details)
        async with gate:
            found[index] = await entry_from_samples(problem, index, per_model, graders[problem.answer_format])

    async with asyncio.TaskGroup() as group:
        for index, problem in enumerate(problems):
            group.create_task(convert(index, problem))
    entries = [e for e in found if e is not None]
    sources: dict[str, int] = {}
    for entry in entries:
        for samples in entry.samples.values():
            for sample in samples:
                if sample.source:
                    sources[sample.source] = sources.get(sample.source, 0) + 1
    meta = PoolMeta(
        name=study.name,
        dataset=study.dataset.name,
        models=study.model_names,
        k=study.pool.k,
        temperature=study.pool.temperature,
        seed=study.seed,
        n_problems=len(entries),
        model_calls=calls,
        sources=sources,
        runs={c.models[0].name: str(c.run.out_dir) for c in configs},
        wall_s=time.perf_counter() - started,
    )
    write_pool(study.run.out_dir, entries, meta)
    return meta


def write_pool(out: Path, entries: Sequence[PoolEntry], meta: PoolMeta) -> None:
    """Write ``pool.jsonl`` (one problem per line) and ``pool_meta.json``."""
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / (POOL_FILE + ".tmp")
    with tmp.open("w") as fh:
        for entry in entries:
            fh.write(entry.model_dump_json() + "\n")
    tmp.replace(out / POOL_FILE)
    (out / POOL_META).write_text(meta.model_dump_json(indent=2) + "\n")


class Pool(Strict):
    """A pool read back from disk."""

    meta: PoolMeta
    entries: tuple[PoolEntry, ...]
    path: Path


def read_pool(out: Path, study: StudyConfig | None = None) -> Pool:
    """Read ``pool.jsonl`` + ``pool_meta.json``; with ``study``, check the pool is the one it describes."""
    path = out / POOL_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no sample pool at {str(path)!r}; draw it first: slmsim pool CONFIG")
    meta = PoolMeta.model_validate_json((out / POOL_META).read_text())
    entries = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if line.strip():
            try:
                entries.append(PoolEntry.model_validate_json(line))
            except ValidationError as exc:
                raise ValueError(f"{path}:{number}: not a pool entry ({exc.error_count()} errors)") from None
    if study is not None:
        drawn = (meta.models, meta.k, meta.temperature, meta.seed, meta.dataset)
        wanted = (study.model_names, study.pool.k, study.pool.temperature, study.seed, study.dataset.name)
        if drawn != wanted:
            raise ValueError(
                f"the pool at {str(path)!r} was drawn as (models, k, T, seed, dataset)={drawn}, "
                f"but the config asks for {wanted}; use another run.out_dir or redraw the pool"
            )
    return Pool(meta=meta, entries=tuple(entries), path=path)


def split_ids(ids: Iterable[str], validation_fraction: float, seed: int) -> tuple[set[str], set[str]]:
    """Disjoint (validation, test) sets by a seeded hash of each id: stable under reordering and subsetting."""
    validation: set[str] = set()
    test: set[str] = set()
    for pid in ids:
        digest = hashlib.blake2b(f"{seed}:{pid}".encode(), digest_size=8).digest()
        (validation if int.from_bytes(digest, "big") / 2**64 < validation_fraction else test).add(pid)
    return validation, test


def main(argv: list[str] | None = None) -> int:
    """``slmsim pool CONFIG.yaml [key=value ...]``: draw the pool and print what it holds."""
    parser = argparse.ArgumentParser(prog="python -m experiments.studies.slm_mux.sample_pool", description=main.__doc__)
    parser.add_argument("config")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args(argv)

    def body() -> int:
        from experiments.runtime.lock import hold
        from experiments.runtime.preflight import check_run

        study = load_study(args.config, args.overrides)
        for spec in study.models:
            check_run(pool_run_config(study, spec))
        with hold(study.run.out_dir, "slmsim pool"):
            meta = asyncio.run(draw_pool(study))
        print(json.dumps(meta.model_dump(mode="json"), indent=2))
        where = study.run.out_dir / POOL_FILE
        print(f"pool: {meta.n_problems} problems x {len(meta.models)} models x k={meta.k} -> {where}")
        return 0

    return guarded("pool", body)


if __name__ == "__main__":
    sys.exit(main())
