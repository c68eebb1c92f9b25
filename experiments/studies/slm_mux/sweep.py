"""Test-time scaling of SLM-MUX from one sample pool: accuracy, tokens and cost vs k and vs number of models.

Every point is computed from ``pool.jsonl`` with the same pure decision rules the live
orchestrators use (``orchestrators.voting``): the first k stored samples of a model are
a k-sample run. No model is called; the summary says ``model_calls: 0`` and names the
pool it read. k is chosen on the validation split (best SLM-MUX validation accuracy,
ties to the smaller k) and only then reported on the test split.

``slmsim sweep CONFIG.yaml [key=value ...]``
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from pydantic import Field

from experiments.runtime.results import wilson
from experiments.studies.slm_mux.config import StudyConfig
from experiments.studies.slm_mux.sample_pool import Pool, PoolEntry, PoolSample, split_ids
from orchestrators.agent_forest import forest_salt
from orchestrators.voting import Vote, label_support, majority, model_vote, mux_select
from protocols.config import Strict

Method = str  # "slm_mux" | "agent_forest" | "self_consistency" | "single"


def first_k(entry: PoolEntry, model: str, k: int) -> tuple[PoolSample, ...]:
    """A model's first k stored samples of a problem (a k-sample run)."""
    samples = entry.samples.get(model)
    if samples is None:
        raise KeyError(f"model {model!r} is not in the pool (has {sorted(entry.samples)})")
    if len(samples) < k:
        raise ValueError(f"k={k} but the pool holds {len(samples)} samples of {model!r} on {entry.problem_id!r}")
    return samples[:k]


def mux_correct(entry: PoolEntry, models: Sequence[str], k: int, val_acc: Mapping[str, float]) -> bool:
    """Whether SLM-MUX over ``models`` with k samples each answers this problem correctly."""
    votes = [model_vote(m, [s.label for s in first_k(entry, m, k)]) for m in models]
    support = label_support([s.label for m in models for s in first_k(entry, m, k)])
    choice = mux_select(votes, val_acc, support)
    return choice.label is not None and choice.label in entry.correct_labels


def forest_correct(entry: PoolEntry, models: Sequence[str], k: int) -> bool:
    """Whether Agent Forest (one majority over all models' k samples pooled) is correct."""
    votes = [Vote(s.label, m, s.i) for m in models for s in first_k(entry, m, k)]
    vote = majority(votes, salt=forest_salt(0, entry.problem_id))
    return vote.label is not None and vote.label in entry.correct_labels


def sc_correct(entry: PoolEntry, model: str, k: int) -> bool:
    """Whether self-consistency (majority of one model's k samples) is correct."""
    vote = majority([Vote(s.label, model, s.i) for s in first_k(entry, model, k)])
    return vote.label is not None and vote.label in entry.correct_labels


def sample_accuracy(entries: Sequence[PoolEntry], model: str, k: int | None = None) -> float:
    """Mean single-sample accuracy of a model over its first k samples (all samples if None)."""
    hits = total = 0
    for entry in entries:
        samples = entry.samples[model] if k is None else first_k(entry, model, k)
        hits += sum(s.correct for s in samples)
        total += len(samples)
    return hits / total if total else 0.0


def validation_accuracies(entries: Sequence[PoolEntry], models: Sequence[str]) -> dict[str, float]:
    """Each model's mean single-sample accuracy on the given (validation) entries: the MUX tie-break."""
    return {m: round(sample_accuracy(entries, m), 6) for m in models}


class Point(Strict):
    """One method at one setting on one split: accuracy with its interval, and what it cost."""

    method: str
    models: tuple[str, ...]
    k: int
    split: str
    n: int
    correct: float
    accuracy: float
    ci95_low: float
    ci95_high: float
    tokens: int
    tokens_per_problem: float
    cost_usd: float
    calls: int


def evaluate(
    entries: Sequence[PoolEntry],
    method: Method,
    models: Sequence[str],
    k: int,
    val_acc: Mapping[str, float],
    split: str,
) -> Point:
    """Score a method on entries from the pool; tokens and cost are those of the samples it reads."""
    correct: float = 0.0
    tokens = calls = 0
    cost = 0.0
    for entry in entries:
        match method:
            case "slm_mux":
                correct += mux_correct(entry, models, k, val_acc)
            case "agent_forest":
                correct += forest_correct(entry, models, k)
            case "self_consistency":
                correct += sc_correct(entry, models[0], k)
            case "single":
                # the expected accuracy of one sample: the mean over the k stored draws
                correct += sum(s.correct for s in first_k(entry, models[0], k)) / k
            case _:
                raise ValueError(f"unknown sweep method {method!r}")
        used = [s for m in models for s in first_k(entry, m, 1 if method == "single" else k)]
        tokens += sum(s.tokens for s in used)
        cost += sum(s.cost_usd for s in used)
        calls += len(used)
    n = len(entries)
    low, high = wilson(round(correct), n)
    return Point(
        method=method,
        models=tuple(models),
        k=k,
        split=split,
        n=n,
        correct=correct,
        accuracy=correct / n if n else 0.0,
        ci95_low=low,
        ci95_high=high,
        tokens=tokens,
        tokens_per_problem=tokens / n if n else 0.0,
        cost_usd=cost,
        calls=calls,
    )


def choose_k(points: Sequence[Point]) -> int:
    """The k with the best validation accuracy; ties go to the smaller (cheaper) k."""
    best = max(points, key=lambda p: (p.accuracy, -p.k))
    return best.k


class SweepReport(Strict):
    """Everything a sweep computed, and proof that it called no model."""

    pool: str
    pool_models: tuple[str, ...]
    model_calls: int = 0
    pool_model_calls: int
    """Calls made when the pool was drawn (once, before any study)."""
    n_validation: int
    n_test: int
    validation_accuracy: dict[str, float]
    models: tuple[str, ...]
    chosen_k: int
    k_for_models: int | None
    """The fixed k of the number-of-models sweep; None: chosen on validation per point (see ``Point.k``)."""
    by_k: list[Point] = Field(default_factory=list)
    by_models: list[Point] = Field(default_factory=list)
    sources: dict[str, int] = Field(default_factory=dict)


def split_entries(pool: Pool, study: StudyConfig) -> tuple[list[PoolEntry], list[PoolEntry]]:
    """The pool's (validation, test) entries, disjoint, by the study's seeded split."""
    val_ids, _ = split_ids([e.problem_id for e in pool.entries], study.split.validation_fraction, study.split.seed)
    val = [e for e in pool.entries if e.problem_id in val_ids]
    test = [e for e in pool.entries if e.problem_id not in val_ids]
    if not val or not test:
        raise ValueError(f"split left {len(val)} validation and {len(test)} test problems; need both")
    return val, test


def run_sweep(pool: Pool, study: StudyConfig) -> SweepReport:
    """Both sweeps, k chosen on validation. Pure: reads the pool only."""
    val, test = split_entries(pool, study)
    all_models = pool.meta.models
    models = tuple(study.sweep.models or all_models)
    missing = [m for m in models if m not in all_models]
    if missing:
        raise ValueError(f"sweep models {missing} are not in the pool {list(all_models)}")
    val_acc = validation_accuracies(val, all_models)
    k_values = tuple(study.sweep.k_values or range(1, pool.meta.k + 1))
    best_single = max(models, key=lambda m: (val_acc[m], m))
    by_k: list[Point] = []
    for split, entries in (("validation", val), ("test", test)):
        for k in k_values:
            by_k.append(evaluate(entries, "slm_mux", models, k, val_acc, split))
            by_k.append(evaluate(entries, "agent_forest", models, k, val_acc, split))
            by_k.append(evaluate(entries, "self_consistency", (best_single,), k, val_acc, split))
        by_k.append(evaluate(entries, "single", (best_single,), pool.meta.k, val_acc, split))
    chosen = choose_k([p for p in by_k if p.split == "validation" and p.method == "slm_mux"])
    ranked = sorted(all_models, key=lambda m: (-val_acc[m], m))
    by_models: list[Point] = []
    for n in range(1, len(ranked) + 1):
        subset = tuple(ranked[:n])
        # Each point's k is fixed by the config or chosen on validation for that subset, never on test.
        k_n = study.sweep.k_for_models or choose_k(
            [evaluate(val, "slm_mux", subset, k, val_acc, "validation") for k in k_values]
        )
        for method in ("slm_mux", "agent_forest"):
            by_models.append(evaluate(test, method, subset, k_n, val_acc, "test"))
    return SweepReport(
        pool=str(pool.path),
        pool_models=all_models,
        pool_model_calls=pool.meta.model_calls,
        n_validation=len(val),
        n_test=len(test),
        validation_accuracy=val_acc,
        models=models,
        chosen_k=chosen,
        k_for_models=study.sweep.k_for_models,
        by_k=by_k,
        by_models=by_models,
        sources=pool.meta.sources,
    )


def _table(points: Sequence[Point]) -> str:
    head = "| models | k | method | split | accuracy | 95% CI | tokens | tokens/problem | cost USD |"
    rows = [head, "|" + "---|" * 9]
    for p in points:
        rows.append(
            f"| {len(p.models)} | {p.k} | {p.method} | {p.split} | {p.accuracy:.3f} "
            f"| [{p.ci95_low:.3f}, {p.ci95_high:.3f}] | {p.tokens} | {p.tokens_per_problem:.0f} | {p.cost_usd:.4f} |"
        )
    return "\n".join(rows)


def render(report: SweepReport) -> str:
    """The sweep as printable markdown, headed by its provenance."""
    label = "SIMULATED (source: sim)" if set(report.sources) == {"sim"} else f"sources {report.sources}"
    k_rule = f"fixed at {report.k_for_models}" if report.k_for_models else "chosen on validation per point"
    lines = [
        f"# SLM-MUX test-time scaling — {label}",
        f"pool: {report.pool} ({len(report.pool_models)} models; drawn once with {report.pool_model_calls} calls)",
        f"model_calls: {report.model_calls}  (this sweep reads the pool only)",
        f"split: {report.n_validation} validation / {report.n_test} test problems (disjoint)",
        f"validation single-sample accuracy: {report.validation_accuracy}",
        f"k chosen on validation: {report.chosen_k}",
        "",
        f"## accuracy vs k — models {list(report.models)}",
        _table(report.by_k),
        "",
        f"## accuracy vs number of models (test; models added in order of validation accuracy; k {k_rule})",
        _table(report.by_models),
    ]
    return "\n".join(lines)


def plot(report: SweepReport, out: Path) -> list[Path]:
    """Accuracy vs k and vs number of models (test split), saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    fig, ax = plt.subplots(figsize=(6, 4))
    for method in ("slm_mux", "agent_forest", "self_consistency"):
        pts = [p for p in report.by_k if p.split == "test" and p.method == method]
        name = f"{method} ({pts[0].models[0]})" if method == "self_consistency" and pts else method
        ax.plot([p.k for p in pts], [p.accuracy for p in pts], marker="o", label=name)
    ax.axvline(report.chosen_k, color="grey", linestyle=":", label=f"k chosen on validation ({report.chosen_k})")
    ax.set_xlabel("samples per model (k)")
    ax.set_ylabel("test accuracy")
    ax.set_title("accuracy vs k (from one sample pool)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    paths.append(out / "accuracy_vs_k.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    for method in ("slm_mux", "agent_forest"):
        pts = [p for p in report.by_models if p.method == method]
        ax.plot([len(p.models) for p in pts], [p.accuracy for p in pts], marker="o", label=method)
        for p in pts if method == "slm_mux" else []:
            ax.annotate(
                f"k={p.k}", (len(p.models), p.accuracy), fontsize=7, xytext=(3, -10), textcoords="offset points"
            )
    ax.set_xlabel("number of models")
    ax.set_ylabel("test accuracy")
    k_rule = f"k={report.k_for_models}" if report.k_for_models else "k per point chosen on validation"
    ax.set_title(f"accuracy vs number of models ({k_rule})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    paths.append(out / "accuracy_vs_models.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)
    return paths


def write_report(report: SweepReport, out: Path) -> list[Path]:
    """``sweep.json``, ``sweep.md`` and the two plots, in the study directory."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep.json").write_text(report.model_dump_json(indent=2) + "\n")
    (out / "sweep.md").write_text(render(report) + "\n")
    return [out / "sweep.json", out / "sweep.md", *plot(report, out)]
