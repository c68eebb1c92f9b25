"""How every ``slmsim`` command reports a failure: one line, a fixed form, a meaningful exit code.

``slmsim <command>: error: <what, naming the bad value>`` on stderr, then

- exit 2 for bad input (config, dataset, run directory, flags): nothing was run or written;
- exit 1 for a run that stopped or ended unfinished (an actor out of restarts, Ray that
  would not start, open transient failures): what finished is kept, re-running resumes.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import NoReturn

EXIT_BAD_INPUT = 2
EXIT_UNFINISHED = 1
_MAX_CHARS = 600


class RunAborted(RuntimeError):
    """The run stopped before its end for a reason that is not bad input (exit 1)."""


def one_line(exc: BaseException) -> str:
    """The error's message on one bounded line (an OSError names its file)."""
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        text = f"{exc.strerror}: {str(exc.filename)!r}"
    else:
        text = str(exc) or type(exc).__name__
    if isinstance(exc, UnicodeDecodeError):
        text = f"not valid UTF-8 ({exc.reason} at byte {exc.start})"
    text = " ".join(text.split())
    return text if len(text) <= _MAX_CHARS else text[: _MAX_CHARS - 3] + "..."


def error_line(command: str, message: str) -> str:
    return f"slmsim {command}: error: {message}" if command else f"slmsim: error: {message}"


def report(command: str, message: str) -> None:
    print(error_line(command, message), file=sys.stderr)


class CommandParser(argparse.ArgumentParser):
    """``argparse`` in the one error style: a bad flag or argument is one line and exit 2.

    ``prog`` is ``slmsim <command>``; argparse's usage block is not printed on an error
    (``--help`` shows it), so every command fails the same way, whatever the cause.
    """

    def error(self, message: str) -> NoReturn:
        # A sub-command's parser (``slmsim alpha-umi run``) reports as its command.
        words = self.prog.split()
        report(words[1] if len(words) > 1 else "", message)
        raise SystemExit(EXIT_BAD_INPUT)


def guarded(command: str, body: Callable[[], int]) -> int:
    """Run a command's body; bad input and aborted runs become one line and an exit code."""
    # Imported here, not at the top: the ``slmsim`` dispatcher imports this module and must
    # print its help or an unknown-command line without loading pydantic and the datasets.
    from datasets import DatasetError
    from experiments.runtime.config_io import ConfigError

    try:
        try:
            return body()
        except BaseExceptionGroup as group:  # raised through a TaskGroup: report its first cause
            raise _first_leaf(group) from None
    except RunAborted as exc:
        report(command, one_line(exc))
        return EXIT_UNFINISHED
    except (ConfigError, DatasetError, ValueError, OSError, KeyError) as exc:
        # ValueError covers pydantic's and the loaders' one-line errors; OSError a path that
        # cannot be read or written; KeyError an unknown name (a sim card, a model).
        report(command, one_line(exc))
        return EXIT_BAD_INPUT


def _first_leaf(group: BaseExceptionGroup) -> BaseException:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first
