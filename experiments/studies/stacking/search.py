"""Hierarchical tool stacking search, the driver: every candidate is an experiment run.

The search itself (warm-up, layer-by-layer stacking) is ``orchestrators.stacking_search``,
pure async code over an ``evaluate`` callable. Here ``evaluate`` runs a structure as one
``run_experiment_async`` run on a seeded training sample, all candidates sharing one
``ModelPool`` and at most ``candidates_in_flight`` at once; the winner is then run on the
whole test set, and the tables, the plot and ``search.json`` are written
(``slmsim stack-search CONFIG [key=value ...]``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from experiments.runtime.agent_tree import spawn_for_run
from experiments.runtime.driver import ModelPool, make_logger, run_experiment_async
from experiments.runtime.lock import hold
from experiments.runtime.names import slug
from experiments.runtime.preflight import check_models, check_writable_dir, load_dataset
from experiments.runtime.results import read_results
from experiments.runtime.spawn import ensure_ray
from experiments.studies.stacking.config import StackSearchConfig
from experiments.studies.stacking.tables import plot_score_vs_layer, source_of, write_table
from orchestrators.stacking_search import Evaluation, StackResult, max_overlap, rank_key, stack, warm_up
from orchestrators.stacking_structure import Node, layer_of, parse_structure, render, x_k
from protocols.config import ExperimentConfig


def train_sample(problems: Sequence[Any], n: int, seed: int) -> list[Any]:
    """A seeded sample of ``n`` problems, kept in dataset order."""
    if n > len(problems):
        raise ValueError(f"train_data_number={n} exceeds the {len(problems)} problems available")
    picked = set(random.Random(seed).sample(range(len(problems)), n))
    return [p for i, p in enumerate(problems) if i in picked]


class SearchDriver:
    """Evaluates structures as experiment runs sharing one model pool, at most N at once.

    It keeps a handle on every agent tree it spawns, so the named agent actors of
    common subtrees (and, in search, their per-problem answers) live for the whole search.
    """

    def __init__(self, config: StackSearchConfig, out: Path, pool: Any, log: Any, train: list[Any]) -> None:
        self.config = config
        self.out = out
        self.pool = pool
        self.log = log
        self.train = train
        self.gate = asyncio.Semaphore(config.search.candidates_in_flight)
        self.agents: list[dict[str, Any]] = []
        self.memo: dict[str, asyncio.Task[Evaluation]] = {}
        self.origin = time.time()

    def experiment(self, tree: Node, phase: str, test: bool) -> Any:
        c = self.config
        text = render(tree)
        digest = hashlib.sha256(text.encode()).hexdigest()[:8]
        run = c.run.model_copy(
            update={
                "out_dir": self.out / "runs" / phase / f"{slug(render(tree)[:40])}-{digest}",
                "progress": c.run.progress and test,
                "runners": c.run.runners if test else 1,
                "problems_in_flight": c.run.problems_in_flight if test else max(1, len(self.train)),
            }
        )
        return ExperimentConfig(
            name=f"{c.name}-{phase}",
            seed=c.seed,
            dataset=c.dataset,
            models=c.models,
            orchestrator=c.stacking.model_copy(update={"structure": text, "reuse_answers": not test}),
            run=run,
            # The config's own store spec, not the pool's resolved path: a run's id hashes its
            # config, and must not depend on where the search directory is.
            store=c.store,
        )

    async def _run(self, tree: Node, phase: str, test: bool) -> Evaluation:
        experiment = self.experiment(tree, phase, test)
        async with self.gate:
            # Spawned here and kept, so the driver's own spawn_for_run finds these named actors.
            self.agents.append(spawn_for_run(experiment, self.pool.ensure(experiment.models)))
            started = time.time()
            self.log.info("candidate_start", phase=phase, structure=render(tree), t=round(started - self.origin, 3))
            summary = await run_experiment_async(
                experiment, models=self.pool, problems=None if test else self.train, progress_label=phase
            )
            ended = time.time()
        results, _ = read_results(experiment.run.out_dir / "results.jsonl")
        per_layer: dict[str, dict[str, float]] = {}
        for r in results:
            for name, row in r.details.get("per_layer", {}).items():
                acc = per_layer.setdefault(name, {})
                for key, value in row.items():
                    acc[key] = acc.get(key, 0) + value
        got = Evaluation(
            structure=render(tree),
            phase=phase,
            layer=layer_of(tree),
            score=summary.correct / summary.n_expected if summary.n_expected else 0.0,
            n=summary.n_expected,
            correct=summary.correct,
            errors=summary.errors,
            total_tokens=summary.usage.total_tokens,
            tokens_per_problem=summary.tokens_per_problem,
            cost_usd=summary.cost_usd,
            wall_s=ended - started,
            started_at=started - self.origin,
            ended_at=ended - self.origin,
            run_dir=str(experiment.run.out_dir),
            per_layer=per_layer,
            sources=summary.sources,
        )
        self.log.info(
            "candidate_end",
            phase=phase,
            structure=got.structure,
            t=round(got.ended_at, 3),
            score=got.score,
            wall_s=round(got.wall_s, 3),
        )
        return got

    async def evaluate(self, tree: Node, phase: str) -> Evaluation:
        """On the training sample; the same structure is evaluated once per search."""
        key = render(tree)
        if key not in self.memo:
            self.memo[key] = asyncio.ensure_future(self._run(tree, phase, test=False))
        return await self.memo[key]

    async def test(self, tree: Node, phase: str = "test") -> Evaluation:
        """On the whole test set, every call live (no answer reuse)."""
        return await self._run(tree, phase, test=True)


def phase_stats(evaluations: Sequence[Evaluation], wall_s: float) -> dict[str, Any]:
    parts = sum(e.wall_s for e in evaluations)
    return {
        "wall_s": round(wall_s, 3),
        "sum_of_parts_s": round(parts, 3),
        "parallel_speedup": round(parts / wall_s, 2) if wall_s else None,
        "runs": len(evaluations),
        "max_overlap": max_overlap(evaluations),
    }


async def _warmup_phase(
    driver: SearchDriver, report: dict[str, Any], refs: dict[str, float]
) -> dict[str, list[Evaluation]]:
    search, out = driver.config.search, driver.out
    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        chains = {
            m: group.create_task(warm_up(m, driver.evaluate, search.max_warmup_level)) for m in search.base_models
        }
        base = group.create_task(driver.evaluate(x_k(search.baseline, 0), "baseline")) if search.baseline else None
    warmup = {m: task.result() for m, task in chains.items()}
    rows = [e for levels in warmup.values() for e in levels]
    column = [m for m, levels in warmup.items() for _ in levels]
    if base is not None:
        refs[f"baseline {search.baseline} (train)"] = base.result().score
        rows.append(base.result())
        column.append("baseline")
    report["phases"]["warmup"] = phase_stats(rows, time.perf_counter() - started)
    title = "Warm-up: X_0, X_1, ... per base model while the score strictly improves (train sample)"
    write_table(out, "warmup", rows, title, base_model=column)
    return warmup


async def _stacking_phase(
    driver: SearchDriver, warmup: dict[str, list[Evaluation]], report: dict[str, Any]
) -> StackResult:
    search, out = driver.config.search, driver.out
    started = time.perf_counter()
    result = await stack(
        [min(levels, key=rank_key) for levels in warmup.values()],
        driver.evaluate,
        top_n=search.top_n,
        tool_number=search.tool_number,
        max_layers=search.max_layers,
    )
    flat = [e for layer in result.layers for e in layer]
    report["phases"]["stacking"] = phase_stats(flat, time.perf_counter() - started)
    for i, layer in enumerate(result.layers, start=1):
        write_table(out, f"stacking_layer_{i}", layer, f"Stacking layer {i}: candidates (train sample)")
        span = max(e.ended_at for e in layer) - min(e.started_at for e in layer)
        report["phases"][f"stacking_layer_{i}"] = phase_stats(layer, span)
    report["stop_reason"] = result.stop_reason
    report["winner_train"] = result.winner.model_dump(mode="json")
    return result


async def _test_phase(
    driver: SearchDriver, winner: Node, report: dict[str, Any], refs: dict[str, float]
) -> list[Evaluation]:
    search = driver.config.search
    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        tested = group.create_task(driver.test(winner))
        base = group.create_task(driver.test(x_k(search.baseline, 0), "test_baseline")) if search.baseline else None
    tests = [tested.result(), *([base.result()] if base else [])]
    report["phases"]["test"] = phase_stats(tests, time.perf_counter() - started)
    report["test"] = tests[0].model_dump(mode="json")
    report["test_held_out"] = held_out(tests[0], set(report["train_ids"]))
    refs["chosen (test)"] = tests[0].score
    if base is not None:
        report["test_baseline"] = tests[1].model_dump(mode="json")
        refs[f"baseline {search.baseline} (test)"] = tests[1].score
    write_table(driver.out, "test_summary", tests, "Test set: the chosen structure and the baseline")
    return tests


async def run_search_async(config: StackSearchConfig) -> dict[str, Any]:
    """Warm-up, stacking and test into ``config.run.out_dir``; returns what ``search.json`` holds.

    Bad input (cards, keys, out_dir, dataset, a train sample larger than the dataset) is
    reported before anything is written; one search at a time holds the directory.
    """
    out = config.run.out_dir
    check_models(config.models, config.store)
    check_writable_dir(out)
    train = train_sample(load_dataset(config.dataset), config.search.train_data_number, config.seed)
    with hold(out, f"slmsim stack-search {config.name}"):
        return await _search(config, out, train)


async def _search(config: StackSearchConfig, out: Path, train: list[Any]) -> dict[str, Any]:
    (out / "search_config.yaml").write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    log, log_fh = make_logger(out / "log.jsonl")
    ensure_ray(config.run.address)
    # One store for the whole search, so lower layers' recorded calls serve upper layers.
    pool = ModelPool(config.seed, config.store, config.store.path or out / "store", config.run.actor_restarts)
    driver = SearchDriver(config, out, pool, log, train)
    report: dict[str, Any] = {"name": config.name, "train_ids": [p.id for p in train], "phases": {}}
    started = time.perf_counter()
    warmup: dict[str, list[Evaluation]] = {}
    result: StackResult | None = None
    refs: dict[str, float] = {}
    tests: list[Evaluation] = []
    try:
        if config.search.fixed_structure is not None:
            winner = parse_structure(config.search.fixed_structure, known=[m.name for m in config.models])
            report["stop_reason"] = "fixed structure (no search)"
        else:
            warmup = await _warmup_phase(driver, report, refs)
            result = await _stacking_phase(driver, warmup, report)
            winner = parse_structure(result.winner.structure)
        (out / "chosen_structure.txt").write_text(render(winner) + "\n")
        report["chosen_structure"] = render(winner)
        if config.search.test:
            tests = await _test_phase(driver, winner, report, refs)
    finally:
        pool.shutdown()
    every = [*driver_evaluations(driver), *tests]
    report["wall_s"] = round(time.perf_counter() - started, 3)
    report["sum_of_parts_s"] = round(sum(e.wall_s for e in every), 3)
    report["source"] = source_of(every)
    (out / "search.json").write_text(json.dumps(report, indent=2) + "\n")
    plot_score_vs_layer(out, warmup, result, refs, report["source"])
    log.info("search_end", wall_s=report["wall_s"], sum_of_parts_s=report["sum_of_parts_s"])
    log_fh.close()
    return report


def driver_evaluations(driver: SearchDriver) -> list[Evaluation]:
    done = [t for t in driver.memo.values() if t.done() and not t.cancelled()]
    return [t.result() for t in done if t.exception() is None]


def held_out(evaluation: Evaluation, train_ids: set[str]) -> dict[str, Any]:
    """Test accuracy without the training sample (MATH-500 has no separate train split)."""
    results, _ = read_results(Path(evaluation.run_dir) / "results.jsonl")
    kept = [r for r in results if r.problem_id not in train_ids]
    correct = sum(r.correct for r in kept)
    return {"n": len(kept), "correct": correct, "accuracy": correct / len(kept) if kept else 0.0}
