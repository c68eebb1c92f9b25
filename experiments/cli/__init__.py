"""The ``slmsim`` command line.

Subcommands owned by other modules are dispatched lazily to their ``main(argv)``,
so ``slmsim run`` with a bad config fails in well under a second, before Ray or
any model is touched. Errors follow ``experiments.runtime.errors``: one line, exit 2 for
bad input, exit 1 for a run that stopped or ended with open transient failures.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from experiments.runtime.errors import EXIT_UNFINISHED, guarded
from experiments.runtime.errors import report as report_error
from protocols.summary import RunSummary

DELEGATED = {
    "calibrate": (
        "experiments.studies.simulator.calibrate",
        "fit simulated model cards to public single-model accuracies",
    ),
    "validate-sim": ("experiments.studies.simulator.validate", "print the simulator's validation report"),
    "serve-sim": ("experiments.serve.cli", "serve simulated models over an OpenAI-compatible HTTP API"),
    "local-llm": ("experiments.serve.local_llm", "assemble and serve the real Gemma 3 270M model on CPU"),
    "compare": ("experiments.studies.compare", "run several methods and compare them at their token cost"),
    "pool": ("experiments.studies.slm_mux.sample_pool", "draw a cached sample pool for sweeps and model selection"),
    "sweep": ("experiments.studies.slm_mux.sweep", "test-time scaling sweeps from a sample pool (no model calls)"),
    "select": ("experiments.studies.slm_mux.selection", "SLM-MUX model selection search over a sample pool"),
    "stack-search": (
        "experiments.studies.stacking.search",
        "hierarchical tool stacking: warm-up, stacking search, test",
    ),
    "scale": ("experiments.studies.scale", "scaling experiment: one run over a grid of runners, replicas and nodes"),
    "alpha-umi": (
        "experiments.studies.alpha_umi",
        "alpha-UMi planner/caller/summarizer: static evaluation, loop, GLPFT data",
    ),
}


def _run(args: argparse.Namespace) -> int:
    from experiments.runtime.config_io import load_config

    def body() -> int:
        config = load_config(args.config, args.overrides)
        run = config.run
        if args.address:
            run = run.model_copy(update={"address": args.address})
        if args.no_progress:
            run = run.model_copy(update={"progress": False})
        config = config.model_copy(update={"run": run})
        from experiments.runtime.driver import run_experiment
        from experiments.runtime.report import report

        summary = run_experiment(config, retry_failed=args.retry_failed)
        print(report(config.run.out_dir))
        print(f"run directory: {config.run.out_dir}")
        return unfinished(summary)

    return guarded("run", body)


def unfinished(summary: RunSummary) -> int:
    """Exit 0 for a run whose every problem has a final result; else one line and exit 1."""
    if not summary.open_failures and not summary.missing:
        return 0
    report_error(
        "run",
        f"{summary.open_failures} of {summary.n_expected} problems still have a transient failure "
        f"(errors by kind: {summary.error_kinds}) and {summary.missing} have no result; "
        "re-run the same command to retry exactly those",
    )
    return EXIT_UNFINISHED


def _report(args: argparse.Namespace) -> int:
    from experiments.runtime.report import report

    def body() -> int:
        print(report(Path(args.run_dir)))
        return 0

    return guarded("report", body)


def _demo(args: argparse.Namespace) -> int:
    from experiments.studies.demo import demo

    return demo(Path(args.out), problems=args.problems)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="slmsim", description="Collectives of small language models.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run (or resume) an experiment from a YAML config")
    run.add_argument("config", help="path to the experiment YAML")
    run.add_argument("overrides", nargs="*", help="key=value overrides, e.g. dataset.limit=50 orchestrator.k=5")
    run.add_argument("--address", default=None, help="Ray cluster address (default: RAY_ADDRESS or a local instance)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument(
        "--retry-failed",
        action="store_true",
        help="also re-attempt problems recorded with a permanent failure (transient ones are always retried)",
    )
    run.set_defaults(func=_run)

    rep = sub.add_parser("report", help="re-render the summary table of a run directory")
    rep.add_argument("run_dir")
    rep.set_defaults(func=_report)

    dem = sub.add_parser("demo", help="a small comparison on simulated models (no key, no network)")
    dem.add_argument("--out", default="runs/demo", help="where the run directories go")
    dem.add_argument("--problems", type=int, default=200, help="synthetic problems to evaluate")
    dem.set_defaults(func=_demo)

    for name, (_, text) in DELEGATED.items():
        sub.add_parser(name, help=text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in DELEGATED:
        module = importlib.import_module(DELEGATED[argv[0]][0])
        return int(module.main(argv[1:]) or 0)
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
