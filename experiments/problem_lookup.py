"""Find the benchmark problem an OpenAI-style prompt is about, so simulated answers grade for real.

A prompt matches a problem when one of its lines (after an optional ``Question:`` /
``Problem:`` label) is the first line of a known question and the prompt contains
that whole question.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

from protocols.config import DatasetSpec
from protocols.messages import Problem

_LABELS = ("question:", "problem:", "q:")


def _first_line(text: str) -> str:
    return text.strip().split("\n", 1)[0].strip()


def _unlabel(line: str) -> str:
    lowered = line.lower()
    for label in _LABELS:
        if lowered.startswith(label):
            return line[len(label) :].strip()
    return line


class ProblemLookup:
    """Finds the problem a prompt is about, by the first line of its question (O(lines))."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self._by_line: dict[str, list[Problem]] = {}
        for problem in problems:
            line = _first_line(problem.question)
            if len(line) >= 8:  # too-short first lines ("Compute", "Let") would match anything
                self._by_line.setdefault(line, []).append(problem)

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_line.values())

    def find(self, text: str) -> Problem | None:
        """The problem whose question appears last in ``text`` (a few-shot prompt ends with it)."""
        found: Problem | None = None
        for raw in text.split("\n"):
            for problem in self._by_line.get(_unlabel(raw.strip()), ()):
                if problem.question.strip() in text:
                    found = problem
        return found


def load_lookup(names: Iterable[str] = ("math500", "gsm8k", "synthetic")) -> ProblemLookup:
    """A lookup over the default datasets; a dataset that fails to load is reported and left out."""
    from datasets import load_problems

    problems: list[Problem] = []
    for name in names:
        try:
            problems.extend(load_problems(DatasetSpec(name=name)))  # type: ignore[arg-type]
        except Exception as exc:  # the server still serves; those questions get no reference
            print(f"serve-sim: dataset {name!r} not loaded for lookup: {exc}", file=sys.stderr)
    return ProblemLookup(problems)
