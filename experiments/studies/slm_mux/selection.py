"""SLM-MUX model-selection search: every subset of size K of the pool, scored on validation only.

Definitions (exactly as in ``docs/slm_mux.md``), on the validation problems V, with k
samples per model (the first k of the pool):

* a model's *offer* on a problem is its most common answer among its k samples
  (``voting.model_vote``), with confidence = its count / k (abstentions count in k);
* the model is *right* on the problem when its offer is correct;
* it is *consistently wrong* when its offer is wrong and its confidence >= tau
  (``selection.confident_threshold``, default 1.0: all k samples gave that same wrong answer);
* union accuracy U(S) = share of V where at least one model of S is right;
* contradiction C(S) = share of V where some model of S is consistently wrong while
  another model of S is right;
* score(S) = U(S) - lambda * C(S).

The direct objective ``mux_cv`` is SLM-MUX's own accuracy on validation, estimated by
F-fold cross-validation: on each fold the tie-break validation accuracies come from the
other folds only. The test split is never looked at during the search; the winner's
test accuracy is reported afterwards, labelled as such.

``slmsim select CONFIG.yaml [key=value ...]``
"""

from __future__ import annotations

import hashlib
import itertools
import statistics
from collections.abc import Sequence
from pathlib import Path

from pydantic import Field

from experiments.studies.slm_mux.config import StudyConfig
from experiments.studies.slm_mux.sample_pool import Pool, PoolEntry
from experiments.studies.slm_mux.sweep import evaluate, first_k, mux_correct, split_entries, validation_accuracies
from orchestrators.voting import ModelVote, model_vote
from protocols.config import Strict


class SubsetScore(Strict):
    """One candidate subset's scores on validation."""

    models: tuple[str, ...]
    union: float
    contradiction: float
    score: float
    mux_cv: float
    mux_cv_sd: float
    tokens_per_problem: float


class SelectionReport(Strict):
    """The ranked subsets and the winner, with its test accuracy reported after the choice."""

    pool: str
    model_calls: int = 0
    k: int
    lam: float
    confident_threshold: float
    folds: int
    objective: str
    n_validation: int
    n_test: int
    ranked: list[SubsetScore] = Field(default_factory=list)
    chosen: tuple[str, ...] = ()
    chosen_test_accuracy: float = 0.0
    chosen_test_ci95: tuple[float, float] = (0.0, 0.0)
    sources: dict[str, int] = Field(default_factory=dict)


Offers = dict[tuple[str, str], ModelVote]


def offers_of(entries: Sequence[PoolEntry], models: Sequence[str], k: int) -> Offers:
    """Every model's offer on every problem, computed once."""
    return {(e.problem_id, m): model_vote(m, [s.label for s in first_k(e, m, k)]) for e in entries for m in models}


def union_contradiction(
    entries: Sequence[PoolEntry], subset: Sequence[str], offers: Offers, tau: float
) -> tuple[float, float]:
    """U(S) and C(S) on the given entries (definitions in the module doc)."""
    union = contra = 0
    for e in entries:
        votes = [offers[(e.problem_id, m)] for m in subset]
        right = [v.label is not None and v.label in e.correct_labels for v in votes]
        wrong_sure = [
            v.label is not None and not ok and v.confidence >= tau for v, ok in zip(votes, right, strict=True)
        ]
        if any(right):
            union += 1
            if any(wrong_sure):
                contra += 1
    n = len(entries)
    return (union / n, contra / n) if n else (0.0, 0.0)


def fold_of(problem_id: str, folds: int, seed: int) -> int:
    """A problem's cross-validation fold, by a seeded hash (stable, order-free)."""
    digest = hashlib.blake2b(f"fold:{seed}:{problem_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % folds


def mux_cross_validated(
    entries: Sequence[PoolEntry], subset: Sequence[str], k: int, folds: int, seed: int
) -> tuple[float, float]:
    """SLM-MUX validation accuracy by F-fold CV (tie-break accuracies from the other folds); mean and sd."""
    by_fold: dict[int, list[PoolEntry]] = {}
    for e in entries:
        by_fold.setdefault(fold_of(e.problem_id, folds, seed), []).append(e)
    scores = []
    for f, held_out in sorted(by_fold.items()):
        train = [e for g, es in by_fold.items() if g != f for e in es]
        val_acc = validation_accuracies(train, subset)
        scores.append(sum(mux_correct(e, subset, k, val_acc) for e in held_out) / len(held_out))
    if not scores:
        return 0.0, 0.0
    return statistics.fmean(scores), statistics.stdev(scores) if len(scores) > 1 else 0.0


def search(pool: Pool, study: StudyConfig) -> SelectionReport:
    """Score every subset of the configured sizes on validation; rank; report the winner on test."""
    spec = study.selection
    val, test = split_entries(pool, study)
    models = pool.meta.models
    if spec.k > pool.meta.k:
        raise ValueError(f"selection.k={spec.k} exceeds the pool's k={pool.meta.k}")
    sizes = [s for s in spec.sizes if s <= len(models)]
    if not sizes:
        raise ValueError(f"no subset size in {spec.sizes} fits a pool of {len(models)} models")
    offers = offers_of(val, models, spec.k)
    rows = []
    for size in sizes:
        for subset in itertools.combinations(sorted(models), size):
            union, contra = union_contradiction(val, subset, offers, spec.confident_threshold)
            cv, sd = mux_cross_validated(val, subset, spec.k, spec.folds, study.split.seed)
            tokens = sum(s.tokens for e in val for m in subset for s in first_k(e, m, spec.k))
            rows.append(
                SubsetScore(
                    models=subset,
                    union=union,
                    contradiction=contra,
                    score=union - spec.lam * contra,
                    mux_cv=cv,
                    mux_cv_sd=sd,
                    tokens_per_problem=tokens / len(val),
                )
            )
    key = (lambda r: r.score) if spec.objective == "union_contradiction" else (lambda r: r.mux_cv)
    # Ties: the cheaper subset, then the names (documented, deterministic).
    rows.sort(key=lambda r: (-key(r), r.tokens_per_problem, r.models))
    chosen = rows[0].models
    point = evaluate(test, "slm_mux", chosen, spec.k, validation_accuracies(val, chosen), "test")
    return SelectionReport(
        pool=str(pool.path),
        k=spec.k,
        lam=spec.lam,
        confident_threshold=spec.confident_threshold,
        folds=spec.folds,
        objective=spec.objective,
        n_validation=len(val),
        n_test=len(test),
        ranked=rows,
        chosen=chosen,
        chosen_test_accuracy=point.accuracy,
        chosen_test_ci95=(point.ci95_low, point.ci95_high),
        sources=pool.meta.sources,
    )


def render(report: SelectionReport, top: int = 20) -> str:
    """The ranked table (top rows, then the best subset of each size) as markdown."""
    label = "SIMULATED (source: sim)" if set(report.sources) == {"sim"} else f"sources {report.sources}"
    head = "| rank | models | K | union | contradiction | score | MUX acc (CV) | tokens/problem |"
    lines = [
        f"# SLM-MUX model selection — {label}",
        f"pool: {report.pool}; model_calls: {report.model_calls}; k={report.k}; lambda={report.lam}; "
        f"tau={report.confident_threshold}; {report.folds}-fold CV; objective: {report.objective}",
        f"validation {report.n_validation} problems (search) / test {report.n_test} problems (never searched)",
        "",
        head,
        "|" + "---|" * 8,
    ]

    def row(rank: int, r: SubsetScore) -> str:
        return (
            f"| {rank} | {' + '.join(r.models)} | {len(r.models)} | {r.union:.3f} | {r.contradiction:.3f} "
            f"| {r.score:.3f} | {r.mux_cv:.3f} ± {r.mux_cv_sd:.3f} | {r.tokens_per_problem:.0f} |"
        )

    lines += [row(i, r) for i, r in enumerate(report.ranked[:top], start=1)]
    lines += ["", "best subset of each size:", head, "|" + "---|" * 8]
    seen: set[int] = set()
    for i, r in enumerate(report.ranked, start=1):
        if len(r.models) not in seen:
            seen.add(len(r.models))
            lines.append(row(i, r))
    low, high = report.chosen_test_ci95
    lines += [
        "",
        f"chosen: {' + '.join(report.chosen)}; SLM-MUX test accuracy (reported after the choice): "
        f"{report.chosen_test_accuracy:.3f} [{low:.3f}, {high:.3f}]",
    ]
    return "\n".join(lines)


def plot(report: SelectionReport, out: Path) -> Path:
    """Each subset's search score against its cross-validated MUX accuracy, coloured by size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for size in sorted({len(r.models) for r in report.ranked}):
        rows = [r for r in report.ranked if len(r.models) == size]
        ax.scatter([r.score for r in rows], [r.mux_cv for r in rows], s=14, label=f"K={size}")
    ax.set_xlabel(f"union - {report.lam} x contradiction (validation)")
    ax.set_ylabel("SLM-MUX accuracy, cross-validated")
    ax.set_title("model-selection search")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = out / "selection.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_report(report: SelectionReport, out: Path, top: int = 20) -> list[Path]:
    """``selection.json``, ``selection.md`` and ``selection.png`` in the study directory."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "selection.json").write_text(report.model_dump_json(indent=2) + "\n")
    (out / "selection.md").write_text(render(report, top) + "\n")
    return [out / "selection.json", out / "selection.md", plot(report, out)]
