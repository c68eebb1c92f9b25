"""The tables of an alpha-UMi run: static metrics (original and fixed) and the loop's outcomes."""

from __future__ import annotations

import json

from orchestrators.alpha_umi.metrics import metrics_table
from protocols.alpha_umi import LoopSummary, StaticMetrics, StaticSummary, usage_dump


def render_static(summary: StaticSummary) -> str:
    majority = StaticMetrics(plan_acc=summary.majority_plan_acc, act_em=0, hallu=0, arg_f1=0, rouge_l=0)
    label = summary.predictor if summary.predictor != "models" else f"{summary.variant} (models)"
    table = metrics_table(
        [
            (f"{label}, original metrics", summary.original),
            (f"{label}, fixed metrics", summary.fixed),
            ("always-call majority (Plan ACC only)", majority.model_copy(update={"n_steps": summary.n})),
        ]
    )
    sources = ", ".join(f"{k}: {v}" for k, v in sorted(summary.sources.items()))
    return (
        f"{table}\n\nsteps {summary.n}/{summary.n_expected}, errors {summary.errors}, "
        f"Arg. F1 scored on {summary.original.n_args_scored}/{summary.original.n_call_steps} call steps "
        f"(original drops non-JSON gold), sources: {sources}\n"
        f"tokens by role: {json.dumps(usage_dump(summary.usage_by_role))}, cost ${summary.cost_usd:.4f}, "
        f"wall {summary.wall_s:.1f} s"
    )


def render_loop(summary: LoopSummary) -> str:
    n = max(1, summary.n)
    rows = [
        "| variant | tasks | finished | gave up | bound hit | success | answer R-L | steps | model calls |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| {summary.variant} | {summary.n} | {100 * summary.finished / n:.1f}% | {100 * summary.gave_up / n:.1f}% | "
        f"{100 * summary.exhausted / n:.1f}% | {100 * summary.success / n:.1f}% | "
        f"{100 * summary.answer_rouge_l:.2f} | {summary.mean_steps:.2f} | {summary.mean_model_calls:.2f} |",
    ]
    sources = ", ".join(f"{k}: {v}" for k, v in sorted(summary.sources.items()))
    return (
        "\n".join(rows) + f"\n\nobservations: {json.dumps(summary.observations, sort_keys=True)}, hallucinated calls "
        f"{summary.hallucinated_calls}, errors {summary.errors}, sources: {sources}\n"
        f"tokens by role: {json.dumps(usage_dump(summary.usage_by_role))}, cost ${summary.cost_usd:.4f}, "
        f"wall {summary.wall_s:.1f} s"
    )
