"""A run's problems as a stream: counted (and every line checked) once, then read again as they are fed.

A 100k-problem dataset held as ``Problem`` objects costs the driver about 1 KB a
problem, most of its memory (``python -m benchmarks.driver_memory``). A
``ProblemSource`` holds none of them: the driver learns how many there are from a first
pass that parses and discards each (so a bad line is still reported before the run
directory exists), then iterates them again while feeding runners, keeping only the
problems in flight.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from datasets import is_streamed
from experiments.runtime.preflight import load_dataset, read_dataset
from experiments.runtime.results import ResultsWriter
from protocols.config import DatasetSpec
from protocols.messages import Problem


class ProblemSource:
    """``count`` problems and a way to iterate them (again) in dataset order, without holding them."""

    def __init__(self, count: int, open_: Callable[[], Iterator[Problem]]) -> None:
        self.count = count
        self._open = open_

    def __iter__(self) -> Iterator[Problem]:
        return self._open()

    def __len__(self) -> int:
        return self.count

    @classmethod
    def of(cls, problems: Sequence[Problem]) -> ProblemSource:
        """Problems the caller already holds."""
        return cls(len(problems), lambda: iter(problems))

    @classmethod
    def of_dataset(cls, spec: DatasetSpec) -> ProblemSource:
        """The problems of ``spec``, streamed; raises ``DatasetError`` for a bad line now, not mid-run.

        A dataset that is loaded whole anyway (generated, shuffled, GPQA's CSV) is loaded
        once and held, rather than generated twice.
        """
        if not is_streamed(spec):
            return cls.of(load_dataset(spec))
        count = sum(1 for _ in read_dataset(spec))
        return cls(count, lambda: read_dataset(spec))


def pending(source: ProblemSource, writer: ResultsWriter) -> tuple[int, int]:
    """(problems to run, how many of them have an open result on disk) for a resume."""
    if not writer.recorded:
        return source.count, 0
    todo = reattempted = 0
    for problem in source:
        if not writer.is_done(problem.id):
            todo += 1
            reattempted += problem.id in writer
    return todo, reattempted


def unfinished(source: ProblemSource, writer: ResultsWriter) -> Iterator[tuple[int, Problem]]:
    """(dataset index, problem) of each problem without a result that stands, read as the feeders take them."""
    return ((i, p) for i, p in enumerate(source) if not writer.is_done(p.id))
