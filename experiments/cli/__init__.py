"""The ``slmsim`` command line: one module per command group, one table of commands.

Each command lives in a group module (``run``, ``slm_mux``, ``stacking``, ``simulator``,
``alpha_umi``) or, for the server and the scaling study, in its own package's ``cli``;
the table below names it as ``module:function`` and gives its one-line help. Modules
are imported only for the command that runs, so ``slmsim run`` with a bad config fails
in well under a second, before Ray or any model is touched. Errors follow
``experiments.runtime.errors``: ``slmsim <command>: error: <what>`` on stderr, exit 2 for
bad input, exit 1 for a run that stopped or ended with open transient failures.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NamedTuple

from experiments.runtime.errors import CommandParser


class Command(NamedTuple):
    """Where a command's code lives and its one-line help."""

    module: str
    function: str
    help: str


COMMANDS: dict[str, Command] = {
    "run": Command("experiments.cli.run", "run", "run (or resume) an experiment from a YAML config"),
    "report": Command("experiments.cli.run", "report", "re-render the summary table of a run directory"),
    "demo": Command("experiments.cli.run", "demo", "a small comparison on simulated models (no key, no network)"),
    "compare": Command("experiments.cli.run", "compare", "run several methods and compare them at their token cost"),
    "scale": Command(
        "experiments.studies.scale", "main", "scaling experiment: one run over a grid of runners, replicas and nodes"
    ),
    "pool": Command("experiments.cli.slm_mux", "pool", "draw a cached sample pool for sweeps and model selection"),
    "pool-merge": Command(
        "experiments.cli.slm_mux", "pool_merge", "merge sample pools of the same problems drawn apart (no model calls)"
    ),
    "sweep": Command(
        "experiments.cli.slm_mux", "sweep_command", "test-time scaling sweeps from a sample pool (no model calls)"
    ),
    "select": Command("experiments.cli.slm_mux", "select", "SLM-MUX model selection search over a sample pool"),
    "stack-search": Command(
        "experiments.cli.stacking", "stack_search", "hierarchical tool stacking: warm-up, stacking search, test"
    ),
    "alpha-umi": Command(
        "experiments.cli.alpha_umi", "main", "alpha-UMi planner/caller/summarizer: static evaluation, loop, GLPFT data"
    ),
    "calibrate": Command(
        "experiments.cli.simulator", "calibrate", "fit simulated model cards to public single-model accuracies"
    ),
    "validate-sim": Command("experiments.cli.simulator", "validate_sim", "print the simulator's validation report"),
    "serve-sim": Command("experiments.serve.cli", "main", "serve simulated models over an OpenAI-compatible HTTP API"),
    "local-llm": Command(
        "experiments.serve.local_llm", "main", "assemble and serve the real Gemma 3 270M model on CPU"
    ),
}


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser: ``slmsim --help`` lists every command with its one-line help."""
    parser = CommandParser(prog="slmsim", description="Collectives of small language models.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")
    for name, command in COMMANDS.items():
        sub.add_parser(name, help=command.help, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``slmsim <command> ...``: the exit code of the command (argparse's exits included)."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if not args or args[0] not in COMMANDS:
            build_parser().parse_args(args)  # prints the help, or one error line naming the bad command
            return 0
        command = COMMANDS[args[0]]
        function = getattr(importlib.import_module(command.module), command.function)
        return int(function(args[1:]) or 0)
    except SystemExit as exc:  # --help, or a bad flag already reported in one line
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)


if __name__ == "__main__":
    raise SystemExit(main())
