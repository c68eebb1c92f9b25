"""The alpha-UMi commands: ``alpha-umi run | report | glpft``."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from experiments.cli.common import add_config, parse, parser_for
from experiments.runtime.config_io import load_model
from experiments.runtime.errors import guarded
from experiments.studies.alpha_umi.glpft import build_glpft
from experiments.studies.alpha_umi.loop_run import run_loop_async
from experiments.studies.alpha_umi.report import render_loop, render_static
from experiments.studies.alpha_umi.static_run import run_static_async
from protocols.alpha_umi import AlphaUmiConfig, AlphaUmiSummary, StaticSummary

COMMAND = "alpha-umi"


def _run(config_path: str, overrides: Sequence[str], no_progress: bool) -> int:
    config = load_model(AlphaUmiConfig, config_path, overrides)
    if no_progress:
        config = config.model_copy(update={"run": config.run.model_copy(update={"progress": False})})
    if config.mode == "static":
        print(render_static(asyncio.run(run_static_async(config))))
    else:
        print(render_loop(asyncio.run(run_loop_async(config))))
    print(f"run directory: {config.run.out_dir}")
    return 0


def _report(run_dir: str) -> int:
    path = Path(run_dir) / "summary.json"
    try:
        summary = TypeAdapter(AlphaUmiSummary).validate_json(path.read_text())
    except (FileNotFoundError, ValidationError) as exc:
        raise ValueError(f"no alpha-UMi summary in {str(path)!r} ({type(exc).__name__})") from None
    print(render_static(summary) if isinstance(summary, StaticSummary) else render_loop(summary))
    return 0


def _glpft(input_path: str | None, out_dir: str) -> int:
    counts = build_glpft(Path(input_path) if input_path else None, Path(out_dir))
    for name, n in counts.items():
        print(f"{name}: {n}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``slmsim alpha-umi run CONFIG [key=value ...] | report RUN_DIR | glpft [--input FILE] OUT_DIR``."""
    parser = parser_for(COMMAND, "alpha-UMi planner/caller/summarizer: static evaluation, loop, GLPFT data.")
    sub = parser.add_subparsers(dest="action", required=True, metavar="action")
    run = sub.add_parser(
        "run",
        help="run (or resume) a static evaluation or end-to-end loop from a YAML config",
        description="Run (or resume) a static evaluation or end-to-end loop from a YAML config.",
    )
    add_config(run, "dataset.limit=20 predictor=gold")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    rep = sub.add_parser(
        "report",
        help="re-render the table of an alpha-UMi run directory",
        description="Re-render the table of an alpha-UMi run directory.",
    )
    rep.add_argument("run_dir", help="a run directory written by slmsim alpha-umi run")
    glp = sub.add_parser(
        "glpft",
        help="write GLPFT stage-1 and stage-2 fine-tuning data (chat JSONL)",
        description="Write GLPFT stage-1 and stage-2 fine-tuning data (chat JSONL).",
    )
    glp.add_argument("out_dir", help="where the JSONL files go")
    glp.add_argument("--input", default=None, help="alpha-UMi trajectories (default: the shipped out-of-domain file)")
    args = parse(parser, argv)
    if args.action == "run":
        return guarded(COMMAND, lambda: _run(args.config, args.overrides, args.no_progress))
    if args.action == "report":
        return guarded(COMMAND, lambda: _report(args.run_dir))
    return guarded(COMMAND, lambda: _glpft(args.input, args.out_dir))
