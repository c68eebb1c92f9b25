"""``slmsim alpha-umi run CONFIG [key=value ...] | report RUN_DIR | glpft [--input FILE] OUT_DIR``."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

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


def _run(args: argparse.Namespace) -> int:
    from datasets import DatasetError
    from experiments.runtime.config_io import ConfigError, load_model
    from protocols.alpha_umi import AlphaUmiConfig

    try:
        config = load_model(AlphaUmiConfig, args.config, args.overrides)
        if args.no_progress:
            config = config.model_copy(update={"run": config.run.model_copy(update={"progress": False})})
        if config.mode == "static":
            from experiments.studies.alpha_umi.static_run import run_static_async

            print(render_static(asyncio.run(run_static_async(config))))
        else:
            from experiments.studies.alpha_umi.loop_run import run_loop_async

            print(render_loop(asyncio.run(run_loop_async(config))))
    except (ConfigError, DatasetError) as exc:
        print(f"slmsim alpha-umi: {exc}", file=sys.stderr)
        return 2
    print(f"run directory: {config.run.out_dir}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from pydantic import TypeAdapter, ValidationError

    from protocols.alpha_umi import AlphaUmiSummary

    path = Path(args.run_dir) / "summary.json"
    try:
        summary = TypeAdapter(AlphaUmiSummary).validate_json(path.read_text())
    except (FileNotFoundError, ValidationError) as exc:
        print(f"slmsim alpha-umi: no alpha-UMi summary in {str(path)!r} ({type(exc).__name__})", file=sys.stderr)
        return 2
    print(render_static(summary) if isinstance(summary, StaticSummary) else render_loop(summary))
    return 0


def _glpft(args: argparse.Namespace) -> int:
    from datasets import DatasetError
    from experiments.studies.alpha_umi.glpft import build_glpft

    try:
        counts = build_glpft(Path(args.input) if args.input else None, Path(args.out_dir))
    except (DatasetError, ValueError) as exc:
        print(f"slmsim alpha-umi: {exc}", file=sys.stderr)
        return 2
    for name, n in counts.items():
        print(f"{name}: {n}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="slmsim alpha-umi", description="alpha-UMi planner/caller/summarizer agents.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run (or resume) a static evaluation or end-to-end loop from a YAML config")
    run.add_argument("config")
    run.add_argument("overrides", nargs="*", help="key=value overrides, e.g. dataset.limit=20 predictor=gold")
    run.add_argument("--no-progress", action="store_true")
    run.set_defaults(func=_run)
    rep = sub.add_parser("report", help="re-render the table of an alpha-UMi run directory")
    rep.add_argument("run_dir")
    rep.set_defaults(func=_report)
    glp = sub.add_parser("glpft", help="write GLPFT stage-1 and stage-2 fine-tuning data (chat JSONL)")
    glp.add_argument("out_dir")
    glp.add_argument("--input", default=None, help="alpha-UMi trajectories (default: the shipped out-of-domain file)")
    glp.set_defaults(func=_glpft)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
