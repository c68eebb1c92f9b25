"""Fit the simulator to a recorded pool of samples and test its predictions (``slmsim calibrate --from POOL``).

    slmsim calibrate --from runs/my_pool [more pools] [--out DIR] [--holdout 0.5] [--seed 0] [--folds 2]

A pool (``experiments.studies.slm_mux.sample_pool``: k samples per model per problem, from live, replayed or
simulated models; one pool per temperature, each fitted on its own) is split by a seeded
hash of the problem ids into two halves. On the fit half the simulator's parameters are
fitted to the pool:

- per model: its ability, so that its mean single-sample accuracy at the pool's
  temperature matches (bisection on the simulator's exact expected accuracy);
- per-problem structure: the benchmark's shared difficulty sd (the mean pairwise
  correlation across models, and the spread of each model's per-problem accuracy);
- sampling: ``stickiness`` (how often a model repeats itself: within-model agreement);
- mistakes: ``focus_lost`` (how often two wrong samples of a model agree).

The three global parameters are fitted by coordinate search over small grids (the
abilities are refitted at every grid point), on expectations over copies of the fit
problems with fresh per-problem terms (``replicas``). The fitted simulator then predicts
the held-out half as an average over such copies (their own terms are unknown), and
self-consistency (best model on the fit half), SLM-MUX and Agent Forest over all models
are scored per k on both sides with the sweeps' functions (``experiments.studies.slm_mux.sweep.evaluate``),
averaged over k-subsets of the samples. With 2 folds the halves swap and the table pools
both. Written to ``--out`` (default ``POOL/sim_fit``): ``cards.yaml`` (fold 1's fitted
cards, labelled) and ``report.json``. Docs: ``docs/simulator.md``.
"""

from __future__ import annotations

import itertools
import json
import math
import statistics
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import yaml

from actors.backends.sim.answers import normalize, same_answer
from actors.backends.sim.cards import SimCards, load_cards
from actors.backends.sim.world import World, stick_prob
from experiments.runtime.errors import CommandParser
from experiments.studies.slm_mux.sample_pool import Pool, PoolEntry, PoolSample, read_pool, split_ids
from experiments.studies.slm_mux.sweep import evaluate
from protocols.messages import Problem

GRIDS: dict[str, tuple[float, ...]] = {
    "shared_sd": (0.5, 1.0, 1.5, 2.0, 3.0),
    "stickiness": (0.5, 1.0, 2.0, 4.0, 8.0),
    "focus_lost": (0.05, 0.2, 0.4, 0.6, 0.8, 0.95),
}
TEMPLATE = "Qwen2.5-7B-Instruct"
"""Non-skill traits (tokens, speed, collaboration) of a pool model that has no card."""
PASSES = 2
"""Rounds of the coordinate search."""


REPLICAS_FIT = 8
"""Draws of the per-problem random terms per fit problem (the fit matches their expectation)."""
REPLICAS_PREDICT = 20
"""Draws of the per-problem random terms per held-out problem (the prediction is their average)."""


class PoolStats(NamedTuple):
    """What the fit matches: accuracy per model, cross-model correlation, self-agreement, wrong agreement,
    and the spread (sd) of a model's per-problem accuracy: how all-or-nothing its problems are."""

    accuracy: dict[str, float]
    correlation: float
    agreement: float
    wrong_agreement: float
    spread: float = 0.0


def _key(answer: str | None) -> str | None:
    return None if answer is None else normalize(answer)


def pool_stats(entries: Sequence[PoolEntry], models: Sequence[str]) -> PoolStats:
    """The fit statistics of pool entries (recorded or simulated alike)."""
    acc = {m: statistics.fmean(s.correct for e in entries for s in e.samples[m]) for m in models}
    rates = {m: [statistics.fmean(s.correct for s in e.samples[m]) for e in entries] for m in models}
    corrs = []
    for a, b in itertools.combinations(models, 2):
        if statistics.pstdev(rates[a]) > 0 and statistics.pstdev(rates[b]) > 0:
            corrs.append(statistics.correlation(rates[a], rates[b]))
    same = pairs = wsame = wpairs = 0
    for e in entries:
        for m in models:
            for x, y in itertools.combinations(e.samples[m], 2):
                if x.label is None or y.label is None:
                    continue
                pairs += 1
                same += x.label == y.label
                if not x.correct and not y.correct:
                    wpairs += 1
                    wsame += x.label == y.label
    return PoolStats(
        accuracy=acc,
        correlation=statistics.fmean(corrs) if corrs else 0.0,
        agreement=same / pairs if pairs else 0.0,
        wrong_agreement=wsame / wpairs if wpairs else 0.0,
        spread=statistics.fmean(statistics.pstdev(rates[m]) for m in models),
    )


def problem_of(entry: PoolEntry, known: Mapping[str, Problem]) -> Problem:
    """The pool entry's problem: the dataset's own record if it is the same problem, else rebuilt from the entry.

    A pool's ``dataset`` names its benchmark and grader, not necessarily the shipped file: a
    pool of GSM8K-format problems from another file reuses the ids ``gsm8k/test/N``. The
    shipped record is the pool's problem only if its reference is the entry's; otherwise the
    record's metadata (GSM8K step counts, subject) would give the problem a difficulty it
    does not have, and its wrong answers would be built around another reference.
    """
    record = known.get(entry.problem_id)
    if record is not None and same_answer(record.reference, entry.reference):
        return record
    fmt = {"gsm8k": "gsm8k", "gpqa": "letter"}.get(entry.benchmark, "boxed")
    return Problem(
        id=entry.problem_id,
        benchmark=entry.benchmark,
        question=f"(pool problem {entry.problem_id})",
        reference=entry.reference,
        answer_format=fmt,
        domain=entry.domain,
        level=entry.level,
    )


def base_cards(models: Sequence[str], cards: SimCards | None = None) -> SimCards:
    """The committed cards plus a template copy for every pool model that has none."""
    cards = cards or load_cards()
    extra = {
        m: cards.cards[TEMPLATE].model_copy(update={"name": m, "targets": {}, "notes": "fitted to a pool"})
        for m in models
        if m not in cards.cards
    }
    return cards.model_copy(update={"cards": {**cards.cards, **extra}})


def with_params(cards: SimCards, bench: str, values: Mapping[str, float], abilities: Mapping[str, float]) -> SimCards:
    """Cards with the fitted global parameters and per-model abilities on ``bench``."""
    diff = cards.difficulty_of(bench).model_copy(update={"shared_sd": values["shared_sd"]})
    behaviour = cards.behaviour.model_copy(
        update={k: v for k, v in values.items() if k in ("stickiness", "focus_lost")}
    )
    new_cards = {
        **cards.cards,
        **{
            m: cards.cards[m].model_copy(update={"ability": {**cards.cards[m].ability, bench: a}, "domain_offsets": {}})
            for m, a in abilities.items()
        },
    }
    return cards.model_copy(
        update={"difficulty": {**cards.difficulty, bench: diff}, "behaviour": behaviour, "cards": new_cards}
    )


def replicas(problems: Sequence[Problem], n: int) -> list[Problem]:
    """``n`` copies of each problem with fresh per-problem random terms (re-keyed ids).

    A problem's observable structure (benchmark, level, domain, steps, reference) is kept;
    its unobserved terms (shared difficulty draw, model-specific draws, wrong-answer pools)
    are keyed by the id, so each copy is a fresh draw from the fitted distribution. Fitting
    and predicting over copies is fitting and predicting the *distribution* of problems:
    held-out problems' own terms are unknown, so nothing else is an honest prediction.
    """
    return [p.model_copy(update={"id": f"{p.id}~{r}"}) for r in range(n) for p in problems]


def fit_abilities(
    cards: SimCards, problems: Sequence[Problem], targets: Mapping[str, float], temperature: float
) -> dict[str, float]:
    """Per model: the ability whose expected sample accuracy at ``temperature`` equals the pool's.

    The expectation is exact: P(right) of a sample is stick * [greedy right] + (1 - stick) * know.
    """
    world = World(cards)
    lam = stick_prob(cards.behaviour, temperature)
    facts = [world.facts(p) for p in problems]
    out = {}
    for model, target in targets.items():
        card = cards.card(model)
        keep = 1.0 - card.malformed_rate
        lo, hi = -12.0, 12.0
        for _ in range(22):
            mid = (lo + hi) / 2
            views = [world.view_at(card, f, mid) for f in facts]
            acc = statistics.fmean(lam * v.greedy_correct + (1.0 - lam) * v.know for v in views) * keep
            lo, hi = (mid, hi) if acc < target else (lo, mid)
        out[model] = round((lo + hi) / 2, 4)
    return out


def _globals(cards: SimCards, bench: str) -> dict[str, float]:
    return {
        "shared_sd": cards.difficulty_of(bench).shared_sd,
        "stickiness": cards.behaviour.stickiness,
        "focus_lost": cards.behaviour.focus_lost,
    }


def simulate_entries(
    cards: SimCards, problems: Sequence[Problem], models: Sequence[str], k: int, temperature: float, seed: int
) -> list[PoolEntry]:
    """A simulated pool (answers grouped by normal form, as the graders' fast path does)."""
    world = World(cards)
    entries = []
    for index, p in enumerate(problems):
        facts = world.facts(p)
        classes: list[str] = []
        samples: dict[str, tuple[PoolSample, ...]] = {}
        for m in models:
            card = cards.card(m)
            rows = []
            for i in range(k):
                draw = world.draw(card, facts, temperature, seed, m, facts.key, i)
                malformed = world_unit(seed, m, facts.key, i) < card.malformed_rate
                answer = None if malformed else draw.answer
                label = None
                if answer is not None:
                    key = _key(answer)
                    if key not in classes:
                        classes.append(str(key))
                    label = classes.index(str(key))
                rows.append(PoolSample(i=i, answer=answer, label=label, correct=answer is not None and draw.correct))
            samples[m] = tuple(rows)
        correct = tuple(i for i, c in enumerate(classes) if same_answer(c, p.reference))
        entries.append(
            PoolEntry(
                problem_id=p.id,
                index=index,
                benchmark=p.benchmark,
                reference=p.reference,
                classes=tuple(classes),
                correct_labels=correct,
                samples=samples,
            )
        )
    return entries


def world_unit(*parts: object) -> float:
    from actors.backends.sim.skill import unit

    return unit("pool-malformed", *parts)


def distance(sim: PoolStats, real: PoolStats) -> float:
    """How far simulated statistics are from the pool's (accuracies are matched exactly by the fit)."""
    return (
        (sim.correlation - real.correlation) ** 2
        + (sim.agreement - real.agreement) ** 2
        + (sim.wrong_agreement - real.wrong_agreement) ** 2
        + (sim.spread - real.spread) ** 2
    )


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
    values = _globals(cards, bench)
    copies = replicas(problems, REPLICAS_FIT)

    def evaluate_at(vals: Mapping[str, float]) -> tuple[float, dict[str, float], PoolStats]:
        trial = with_params(cards, bench, vals, {})
        abilities = fit_abilities(trial, copies, real.accuracy, temperature)
        fitted = with_params(cards, bench, vals, abilities)
        sim = pool_stats(simulate_entries(fitted, copies, models, k, temperature, 0), models)
        return distance(sim, real), abilities, sim

    best = evaluate_at(values)
    for _ in range(passes):
        for name, grid in GRIDS.items():
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


def subset_accuracy(
    entries: Sequence[PoolEntry], method: str, models: Sequence[str], k: int, val: Mapping[str, float], split: str
) -> float:
    """A method's accuracy at ``k``, averaged over every k-subset of the stored samples (order kept).

    ``evaluate`` reads each model's first k samples; on a recorded pool the samples at one
    index share a server seed across problems (the openai backend sends ``seed * 1000003 +
    sample_index``), so "the first k" is one lucky or unlucky draw for the whole pool (on the
    shipped T = 0.8 Gemma pool sample 0 is right on 37.5% of problems, sample 1 on 2.5%).
    Averaging over subsets is the unbiased k-of-n estimator (like pass@k) on both sides.
    """
    n = min(len(entries[0].samples[m]) for m in models)
    subsets = list(itertools.combinations(range(n), k))
    total = 0.0
    for sub in subsets:
        chosen = [
            e.model_copy(update={"samples": {m: tuple(s[j] for j in sub) for m, s in e.samples.items()}})
            for e in entries
        ]
        total += evaluate(chosen, method, models, k, val, split).accuracy
    return total / len(subsets)


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
