"""What every ``slmsim`` command shares: its parser, the config arguments, the error handling.

A command is a function ``(argv) -> exit code`` in one of the group modules of this
package, listed in ``experiments.cli.COMMANDS``. Its parser comes from ``parser_for`` (prog
``slmsim <command>``, the command's one-line help as its description, argparse errors in
the one error style); its body runs under ``experiments.runtime.errors.guarded``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from experiments.runtime.errors import CommandParser


def parser_for(command: str, description: str) -> CommandParser:
    """The parser of ``slmsim <command>``."""
    return CommandParser(prog=f"slmsim {command}", description=description)


def add_config(parser: argparse.ArgumentParser, example: str = "dataset.limit=50") -> None:
    """``CONFIG [key=value ...]``: a YAML file and dotted overrides, as every config-driven command takes."""
    parser.add_argument("config", help="path to the YAML config")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help=f"config overrides, e.g. {example}")


def parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Options and positionals in any order: ``slmsim run CONFIG --no-progress dataset.limit=50``
    parses as the same command written with the option first (plain ``parse_args`` stops the
    ``key=value`` list at the option and rejects the rest). A parser with sub-commands (``alpha-umi``)
    parses with plain ``parse_args``: argparse cannot intermix those."""
    args = None if argv is None else list(argv)
    if any(isinstance(action, argparse._SubParsersAction) for action in parser._actions):
        return parser.parse_args(args)
    return parser.parse_intermixed_args(args)
