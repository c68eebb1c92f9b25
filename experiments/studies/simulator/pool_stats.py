"""What a sample pool shows: the statistics the fit matches, and methods' accuracy per k.

The same functions read a recorded pool and a simulated one (``pool_sim.simulate_entries``),
so the fit (``pool_fit``) compares like with like.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from actors.backends.sim.answers import normalize
from experiments.studies.slm_mux.sample_pool import PoolEntry
from experiments.studies.slm_mux.sweep import evaluate


class PoolStats(NamedTuple):
    """What the fit matches: accuracy per model, cross-model correlation, self-agreement, wrong agreement,
    the spread (sd) of a model's per-problem accuracy (how all-or-nothing its problems are), and
    cross-model wrong agreement: how often two wrong samples of *different* models give the same
    answer (None in a one-model pool, which cannot show it)."""

    accuracy: dict[str, float]
    correlation: float
    agreement: float
    wrong_agreement: float
    spread: float = 0.0
    cross_wrong_agreement: float | None = None


def answer_key(answer: str | None) -> str | None:
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
    cross = cpairs = 0
    for e in entries:
        for a, b in itertools.combinations(models, 2):
            for x in e.samples[a]:
                for y in e.samples[b]:
                    if x.label is not None and y.label is not None and not x.correct and not y.correct:
                        cpairs += 1
                        cross += x.label == y.label
    return PoolStats(
        accuracy=acc,
        correlation=statistics.fmean(corrs) if corrs else 0.0,
        agreement=same / pairs if pairs else 0.0,
        wrong_agreement=wsame / wpairs if wpairs else 0.0,
        spread=statistics.fmean(statistics.pstdev(rates[m]) for m in models),
        cross_wrong_agreement=(cross / cpairs if cpairs else 0.0) if len(models) > 1 else None,
    )


def distance(sim: PoolStats, real: PoolStats) -> float:
    """How far simulated statistics are from the pool's (accuracies are matched exactly by the fit)."""
    cross = 0.0
    if real.cross_wrong_agreement is not None and sim.cross_wrong_agreement is not None:
        cross = (sim.cross_wrong_agreement - real.cross_wrong_agreement) ** 2
    return (
        (sim.correlation - real.correlation) ** 2
        + (sim.agreement - real.agreement) ** 2
        + (sim.wrong_agreement - real.wrong_agreement) ** 2
        + (sim.spread - real.spread) ** 2
        + cross
    )


def subset_accuracy(
    entries: Sequence[PoolEntry], method: str, models: Sequence[str], k: int, val: Mapping[str, float], split: str
) -> float:
    """A method's accuracy at ``k``, averaged over every k-subset of the stored samples (order kept).

    ``evaluate`` reads each model's first k samples, which uses only part of the pool at
    k < n and makes the curve over k one particular draw. Averaging over subsets is the
    unbiased k-of-n estimator (like pass@k) with the least variance, on both sides. It also
    keeps pools recorded before the ``openai`` backend keyed its seed by problem honest:
    those shared one server seed per sample index across problems (the first Gemma pool at
    T = 0.8: sample 0 right on 37.5% of problems, sample 1 on 2.5%).
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
