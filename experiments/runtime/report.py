"""Render run summaries as a table (``slmsim report RUN_DIR``)."""

from __future__ import annotations

from pathlib import Path

from experiments.runtime.results import (
    RESULTS,
    SIMULATED_SOURCES,
    SUMMARY,
    latest,
    read_results,
    source_label,
    summarize,
)
from protocols.summary import RunSummary


def load_summary(run_dir: Path) -> RunSummary:
    """Read ``summary.json``, or rebuild it from ``results.jsonl`` for an interrupted run."""
    summary_path = run_dir / SUMMARY
    if summary_path.exists():
        return RunSummary.model_validate_json(summary_path.read_text())
    lines, _ = read_results(run_dir / RESULTS)
    results = list(latest(lines).values())  # an interrupted run may hold an open result and its retry
    if not results and not (run_dir / RESULTS).exists():
        raise FileNotFoundError(f"{str(run_dir)!r} is not a run directory (no {SUMMARY} or {RESULTS})")
    first = results[0] if results else None
    return summarize(
        results,
        run_id=first.run_id if first else "?",
        name=run_dir.name,
        orchestrator=first.orchestrator if first else "?",
        dataset=first.benchmark if first else "?",
        n_expected=len(results),
    )


def render_table(rows: list[tuple[str, RunSummary]]) -> str:
    """A fixed-width table: method, accuracy with 95% CI, errors, tokens, cost, calls, source."""
    header = (
        "method",
        "n",
        "accuracy",
        "95% CI",
        "errors",
        "tokens",
        "tok/problem",
        "cost $",
        "calls",
        "retries",
        "source",
    )
    lines = [header]
    for label, s in rows:
        lines.append(
            (
                label,
                f"{s.n}/{s.n_expected}",
                f"{100 * s.accuracy:.1f}%",
                f"[{100 * s.ci95_low:.1f}, {100 * s.ci95_high:.1f}]",
                str(s.errors),
                f"{s.usage.total_tokens:,}",
                f"{s.tokens_per_problem:,.0f}",
                f"{s.cost_usd:.4f}",
                str(s.calls),
                str(s.retries),
                source_label(s),
            )
        )
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    out = []
    for n, row in enumerate(lines):
        out.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def render_domains(summary: RunSummary) -> str:
    """Per-domain accuracy lines."""
    return "\n".join(
        f"  {domain:<28} {stat.correct:>4}/{stat.n:<4} {100 * stat.accuracy:5.1f}%"
        for domain, stat in summary.per_domain.items()
    )


def report(run_dir: Path) -> str:
    """The text ``slmsim report`` prints for one run directory."""
    summary = load_summary(run_dir)
    parts = [render_table([(summary.orchestrator, summary)])]
    if len(summary.per_domain) > 1:
        parts.append("per domain:\n" + render_domains(summary))
    parts.append(
        f"latency per problem p50={summary.latency_p50_s:.3f}s p95={summary.latency_p95_s:.3f}s; "
        f"errors by kind: {summary.error_kinds or 'none'}; completions by backend: {summary.sources}"
    )
    if summary.open_failures or summary.missing:
        parts.append(
            f"OPEN: {summary.open_failures} problems ended with a transient failure and {summary.missing} have no "
            "result; re-run the same command to retry exactly those."
        )
    if SIMULATED_SOURCES & set(summary.sources):
        parts.append("NOTE: completions from the SIMULATOR (a calibrated model of LLM behaviour), not real models.")
    if summary.sources.get("fake"):
        parts.append(
            "NOTE: FAKE completions (backend: fake, a test double): no model was asked; the scores mean nothing."
        )
    return "\n".join(parts)
