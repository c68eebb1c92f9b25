"""Fit the simulator to a recorded pool of samples and test its predictions (``slmsim calibrate --from POOL``).

    slmsim calibrate --from runs/my_pool [more pools] [--out DIR] [--holdout 0.5] [--seed 0] [--folds 2]

A pool (``experiments.studies.slm_mux.sample_pool``: k samples per model per problem, from live, replayed or
simulated models; one pool per temperature, each fitted on its own) is split by a seeded
hash of the problem ids into two halves. On the fit half the simulator's parameters are
fitted to the pool:

- per model: its ability, so that its mean single-sample accuracy at the pool's
  temperature matches (bisection on the simulator's exact expected accuracy);
- per-problem structure: the benchmark's shared difficulty sd (the mean pairwise
  correlation across models, and the spread of each model's per-problem accuracy), and
  ``knowledge_scale``, how close to bimodal per-problem knowledge is (the same spread: at
  the cards' prior 2.5 the real Gemma T = 0.8 pool's spread, 0.24, is out of reach, 0.30 at
  the lowest ``shared_sd``);
- sampling: ``stickiness`` (how often a model repeats itself: within-model agreement);
- mistakes: ``focus_lost`` (how often two wrong samples of a model agree) and, in a pool of two
  or more models, ``shared_wrong_prob`` and ``tilt_sd`` (how often two wrong samples of
  different models agree: how much of a model's mistakes come from the problem's shared pool,
  and how differently each model weights that pool).

The global parameters are fitted by coordinate search over small grids (the
abilities are refitted at every grid point), on expectations over copies of the fit
problems with fresh per-problem terms (``replicas``). The fitted simulator then predicts
the held-out half as an average over such copies (their own terms are unknown), and
self-consistency (best model on the fit half), SLM-MUX and Agent Forest over all models
are scored per k on both sides with the sweeps' functions (``experiments.studies.slm_mux.sweep.evaluate``),
averaged over k-subsets of the samples. With 2 folds the halves swap and the table pools
both. Written to ``--out`` (default ``POOL/sim_fit``): ``cards.yaml`` (fold 1's fitted
cards, labelled) and ``report.json``. Docs: ``docs/simulator.md``.

This module searches, predicts and reports; what a pool shows (its statistics, a method's
accuracy per k) is ``pool_stats``, and the simulator over a pool's problems is ``pool_sim``.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import yaml

from actors.backends.sim.cards import SimCards
from experiments.runtime.errors import CommandParser
from experiments.studies.simulator.pool_sim import (
    base_cards,
    fit_abilities,
    global_values,
    problem_of,
    replicas,
    simulate_entries,
    with_params,
)
from experiments.studies.simulator.pool_stats import PoolStats, distance, pool_stats, subset_accuracy
from experiments.studies.slm_mux.sample_pool import Pool, PoolEntry, read_pool, split_ids
from protocols.messages import Problem

GRIDS: dict[str, tuple[float, ...]] = {
    "shared_sd": (0.5, 1.0, 1.5, 2.0, 3.0),
    # How all-or-nothing a model's per-problem knowledge is; the cards' 2.5 is a prior set for
    # 3-27B models on MATH/GSM8K (docs/simulator.md, Knowledge), and a 270M model on sums is
    # right on 1-3 of 5 samples of many problems. The pool's per-problem spread pins it.
    "knowledge_scale": (0.6, 1.0, 1.5, 2.5),
    "stickiness": (0.5, 1.0, 2.0, 4.0, 8.0),
    "focus_lost": (0.05, 0.2, 0.4, 0.6, 0.8, 0.95),
    # How often a structured mistake is one other models make too (the cards' 0.85 is a prior
    # for distinct models); only a pool of two or more models shows it (cross-model wrong agreement).
    "shared_wrong_prob": (0.5, 0.85, 1.0),
    # How differently models weight the shared wrong answers (the cards' 1.5 is a prior): with
    # shared_wrong_prob it sets cross-model against within-model wrong agreement.
    "tilt_sd": (0.5, 1.5, 3.0),
}
CROSS_MODEL = frozenset({"shared_wrong_prob", "tilt_sd"})
"""Parameters only a pool of two or more models can pin down (left at the cards' prior otherwise)."""
PASSES = 2
"""Rounds of the coordinate search."""
REPLICAS_FIT = 8
"""Draws of the per-problem random terms per fit problem (the fit matches their expectation)."""
REPLICAS_PREDICT = 20
"""Draws of the per-problem random terms per held-out problem (the prediction is their average)."""


class Fit(NamedTuple):
    """The fitted parameters and the cards that carry them."""

    values: dict[str, float]
    abilities: dict[str, float]
    cards: SimCards
    real: PoolStats
    sim: PoolStats


def fit(
    pool: Pool, problems: Sequence[Problem], entries: Sequence[PoolEntry], log: bool = False, passes: int = PASSES
) -> Fit:
    """Coordinate search over ``GRIDS`` (abilities refitted at each point) on the fit entries."""
    models = list(pool.meta.models)
    k, temperature = pool.meta.k, pool.meta.temperature
    bench = problems[0].benchmark
    real = pool_stats(entries, models)
    cards = base_cards(models)
    values = global_values(cards, bench)
    if len(models) < 2:
        values = {name: v for name, v in values.items() if name not in CROSS_MODEL}
    grids = {name: grid for name, grid in GRIDS.items() if name in values}
    copies = replicas(problems, REPLICAS_FIT)

    def evaluate_at(vals: Mapping[str, float]) -> tuple[float, dict[str, float], PoolStats]:
        trial = with_params(cards, bench, vals, {})
        abilities = fit_abilities(trial, copies, real.accuracy, temperature)
        fitted = with_params(cards, bench, vals, abilities)
        sim = pool_stats(simulate_entries(fitted, copies, models, k, temperature, 0), models)
        return distance(sim, real), abilities, sim

    best = evaluate_at(values)
    for _ in range(passes):
        for name, grid in grids.items():
            for value in grid:
                trial_values = {**values, name: value}
                got = evaluate_at(trial_values)
                if got[0] < best[0] - 1e-9:
                    best, values = got, trial_values
            if log:
                print(f"  {name} -> {values[name]} (distance {best[0]:.4f})", flush=True)
    abilities = best[1]
    return Fit(values, abilities, with_params(cards, bench, values, abilities), real, best[2])


class Prediction(NamedTuple):
    """One method at one k on the held-out problems: the pool's accuracy and the fitted simulator's."""

    method: str
    k: int
    pool: float
    sim: float

    @property
    def error(self) -> float:
        return self.sim - self.pool


def predict(
    fitted: Fit, pool: Pool, problems: Sequence[Problem], held: Sequence[PoolEntry], best: str
) -> list[Prediction]:
    """Self-consistency (``best``), SLM-MUX and Agent Forest per k: held-out pool vs fitted simulator.

    The simulated side is an expectation over the fitted distribution of problems
    (``replicas``): the held-out problems' observable structure, fresh per-problem terms.
    Both sides are averaged over sample subsets (``subset_accuracy``).
    """
    models = list(pool.meta.models)
    copies = replicas(problems, REPLICAS_PREDICT)
    sim_entries = simulate_entries(fitted.cards, copies, models, pool.meta.k, pool.meta.temperature, 100)
    val = fitted.real.accuracy
    out = []
    for k in range(1, pool.meta.k + 1):
        for method, ms in (("self_consistency", [best]), ("slm_mux", models), ("agent_forest", models)):
            if method != "self_consistency" and len(models) < 2:
                continue
            real = subset_accuracy(held, method, ms, k, val, "held_out")
            sim = subset_accuracy(sim_entries, method, ms, k, val, "sim")
            out.append(Prediction(method, k, 100 * real, 100 * sim))
    return out


def _fold(
    pool: Pool, known: Mapping[str, Problem], held_ids: set[str], log: bool, passes: int
) -> tuple[Fit, list[Prediction], list[Problem], int, int, str]:
    """Fit on the pool's problems outside ``held_ids``, predict the ones inside."""
    fit_entries = [e for e in pool.entries if e.problem_id not in held_ids]
    held_entries = [e for e in pool.entries if e.problem_id in held_ids]
    fit_problems = [problem_of(e, known) for e in fit_entries]
    held_problems = [problem_of(e, known) for e in held_entries]
    fitted = fit(pool, fit_problems, fit_entries, log, passes)
    best = max(fitted.real.accuracy, key=lambda m: fitted.real.accuracy[m])
    predictions = predict(fitted, pool, held_problems, held_entries, best)
    return fitted, predictions, fit_problems, len(fit_entries), len(held_entries), best


def run(
    pool_dir: Path,
    out: Path | None = None,
    holdout: float = 0.5,
    seed: int = 0,
    log: bool = True,
    passes: int = PASSES,
    folds: int = 2,
) -> dict:
    """Fit and predict by ``folds``-fold cross-fitting; write ``cards.yaml`` and ``report.json``.

    Fold 1 holds out a seeded ``holdout`` share of the problems and fits on the rest; with
    ``folds=2`` fold 2 swaps the halves, so every problem is predicted once by a fit that
    never saw it. The table pools the folds (problem-weighted): on a small pool of a model
    whose problems are all-or-nothing, the halves' accuracies differ by several points by
    chance alone, and one split's error mostly measures that luck; each row also carries
    the pool's own sampling sd (``pool_se``) so the error can be read against it.
    """
    pool = read_pool(pool_dir)
    known = _dataset_problems(pool.meta.dataset)
    ids = [e.problem_id for e in pool.entries]
    first, rest = split_ids(ids, holdout, seed)
    if len(first) < 5 or len(rest) < 5:
        raise ValueError(f"pool {str(pool_dir)!r} has {len(ids)} problems; need at least 10 to fit and hold out")
    runs = [_fold(pool, known, held, log, passes) for held in ([first, rest] if folds == 2 else [first])]
    fitted, _, fit_problems, _, _, best = runs[0]
    pooled: list[Prediction] = []
    for rows in zip(*(r[1] for r in runs), strict=True):
        weights = [r[4] for r in runs]
        pooled.append(
            Prediction(
                rows[0].method,
                rows[0].k,
                sum(w * x.pool for w, x in zip(weights, rows, strict=True)) / sum(weights),
                sum(w * x.sim for w, x in zip(weights, rows, strict=True)) / sum(weights),
            )
        )
    n_held = sum(r[4] for r in runs)
    by_method: dict[str, float] = {}
    for method in dict.fromkeys(p.method for p in pooled):
        by_method[method] = statistics.fmean(abs(p.error) for p in pooled if p.method == method)
    report = {
        "source": f"fit to pool {pool_dir!s} (pool sources: {pool.meta.sources}); predictions: sim",
        "pool": {"models": list(pool.meta.models), "k": pool.meta.k, "temperature": pool.meta.temperature},
        "folds": [
            {
                "n_fit": r[3],
                "n_held_out": r[4],
                "fitted": {"global": r[0].values, "ability": r[0].abilities},
                "stats_pool": r[0].real._asdict(),
                "stats_sim": r[0].sim._asdict(),
                "self_consistency_model": r[5],
                "predictions": [p._asdict() | {"error": p.error} for p in r[1]],
            }
            for r in runs
        ],
        "n_fit": runs[0][3],
        "n_held_out": n_held,
        "fitted": {"global": fitted.values, "ability": fitted.abilities},
        "self_consistency_model": best,
        "predictions": [
            p._asdict() | {"error": p.error, "pool_se": 100 * math.sqrt(p.pool / 100 * (1 - p.pool / 100) / n_held)}
            for p in pooled
        ],
        "mean_abs_error": by_method,
    }
    out = out or pool_dir / "sim_fit"
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    fitted_cards = {m: fitted.cards.cards[m].model_dump(mode="json") for m in pool.meta.models}
    header = f"# FITTED by `slmsim calibrate --from {pool_dir}` (fold 1) to a recorded pool; not public figures.\n"
    body = {
        "difficulty": {fit_problems[0].benchmark: fitted.cards.difficulty_of(fit_problems[0].benchmark).model_dump()}
    }
    body |= {"behaviour": fitted.cards.behaviour.model_dump(mode="json"), "cards": fitted_cards}
    (out / "cards.yaml").write_text(header + yaml.safe_dump(body, sort_keys=False, width=120))
    return report


def _dataset_problems(name: str) -> dict[str, Problem]:
    from datasets import load_problems
    from protocols.config import DatasetSpec

    try:
        return {p.id: p for p in load_problems(DatasetSpec(name=name))}
    except (ValueError, FileNotFoundError):
        return {}


def format_report(report: dict) -> str:
    """The report as a table (SIMULATED predictions vs the pool's own results)."""
    folds = report["folds"]
    pool = report["pool"]
    lines = [
        f"calibrate --from: {report['source']}",
        f"T={pool['temperature']} k={pool['k']}: {len(folds)} fold(s), every prediction on problems held out"
        f" from its fit ({report['n_held_out']} predicted in all)",
    ]
    for i, f in enumerate(folds, 1):
        lines.append(f"fold {i}: fit on {f['n_fit']}, predict {f['n_held_out']}; fitted {f['fitted']['global']}")
        lines.append(f"        fitted ability: {f['fitted']['ability']}")
    lines.append(f"{'method':18} {'k':>3} {'pool':>7} {'±se':>5} {'sim':>7} {'error':>7}")
    for p in report["predictions"]:
        lines.append(
            f"{p['method']:18} {p['k']:3d} {p['pool']:7.1f} {p['pool_se']:5.1f} {p['sim']:7.1f} {p['error']:+7.1f}"
        )
    lines.append("mean |error| (points): " + ", ".join(f"{m} {v:.1f}" for m, v in report["mean_abs_error"].items()))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = CommandParser(prog="slmsim calibrate --from", description=__doc__.split("\n")[0])
    parser.add_argument(
        "pool", type=Path, nargs="+", help="pool directories (pool.jsonl + pool_meta.json), e.g. one per temperature"
    )
    parser.add_argument("--out", type=Path, default=None, help="output dir (several pools: one subdir per pool)")
    parser.add_argument("--holdout", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--folds", type=int, choices=(1, 2), default=2, help="2: cross-fit both halves (default)")
    args = parser.parse_args(argv)
    try:
        for i, pool_dir in enumerate(args.pool):
            out = args.out / pool_dir.name if args.out and len(args.pool) > 1 else args.out
            report = run(pool_dir, out, args.holdout, args.seed, folds=args.folds)
            print(("\n" if i else "") + format_report(report), flush=True)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
