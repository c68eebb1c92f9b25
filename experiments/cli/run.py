"""Commands that run experiments: ``run``, ``report``, ``demo`` and ``compare``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from experiments.cli.common import add_config, parse, parser_for
from experiments.runtime.config_io import load_config
from experiments.runtime.driver import run_experiment
from experiments.runtime.errors import EXIT_UNFINISHED, guarded
from experiments.runtime.errors import report as report_error
from experiments.runtime.preflight import check_run
from experiments.runtime.report import report as render_report
from experiments.studies import compare as comparison
from experiments.studies.demo import demo as run_demo
from protocols.summary import RunSummary


def run(argv: Sequence[str] | None = None) -> int:
    """``slmsim run CONFIG [key=value ...]``."""
    parser = parser_for("run", "Run (or resume) an experiment from a YAML config.")
    add_config(parser, "dataset.limit=50 orchestrator.k=5")
    parser.add_argument(
        "--address", default=None, help="Ray cluster address (default: RAY_ADDRESS or a local instance)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--retry-failed",
        action="store_true",
        help="also re-attempt problems recorded with a permanent failure (transient ones are always retried)",
    )
    args = parse(parser, argv)

    def body() -> int:
        config = load_config(args.config, args.overrides)
        update: dict[str, object] = {}
        if args.address:
            update["address"] = args.address
        if args.no_progress:
            update["progress"] = False
        config = config.model_copy(update={"run": config.run.model_copy(update=update)})
        summary = run_experiment(config, retry_failed=args.retry_failed)
        print(render_report(config.run.out_dir))
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


def report(argv: Sequence[str] | None = None) -> int:
    """``slmsim report RUN_DIR``."""
    parser = parser_for("report", "Re-render the summary table of a run directory.")
    parser.add_argument("run_dir", help="a run directory written by slmsim run")
    args = parse(parser, argv)

    def body() -> int:
        print(render_report(Path(args.run_dir)))
        return 0

    return guarded("report", body)


def demo(argv: Sequence[str] | None = None) -> int:
    """``slmsim demo [--out DIR] [--problems N]``."""
    parser = parser_for("demo", "A small comparison on simulated models (no key, no network).")
    parser.add_argument("--out", default="runs/demo", help="where the run directories go")
    parser.add_argument("--problems", type=int, default=200, help="synthetic problems to evaluate")
    args = parse(parser, argv)
    return guarded("demo", lambda: run_demo(Path(args.out), problems=args.problems))


def compare(argv: Sequence[str] | None = None) -> int:
    """``slmsim compare CONFIG [key=value ...] [--parallel N] [--only LABELS]``."""
    parser = parser_for("compare", "Run several methods and compare them at their token cost.")
    add_config(parser, "base.dataset.limit=50")
    parser.add_argument("--parallel", type=int, default=2, help="methods run at once (default 2)")
    parser.add_argument("--only", default=None, help="comma-separated method labels (name suffixes) to run")
    args = parse(parser, argv)

    def body() -> int:
        configs = comparison.load_comparison(args.config, args.overrides)
        if args.only:
            wanted = {comparison.slug(x.strip()) for x in args.only.split(",")}
            configs = [c for c in configs if c.run.out_dir.name in wanted]
            if not configs:
                raise ValueError(f"--only {args.only!r} matches no method")
        for config in configs:
            check_run(config)
        summaries = comparison.run_comparison(configs, parallel=args.parallel)
        paths = comparison.write_report(configs, summaries, comparison.common_dir(configs))
        print(comparison.render(configs, summaries))
        print("written: " + ", ".join(str(p) for p in paths))
        open_ = [(c, s) for c, s in zip(configs, summaries, strict=True) if s.open_failures or s.missing]
        if open_:
            names = ", ".join(f"{comparison.label_of(c)} ({s.open_failures + s.missing})" for c, s in open_)
            report_error(
                "compare", f"methods with problems still open after transient failures: {names}; re-run to retry"
            )
            return EXIT_UNFINISHED
        return 0

    return guarded("compare", body)
