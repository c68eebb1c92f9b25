"""The run directory: resumable results file, summary, and the summary table.

``results.jsonl`` is appended one flushed line per finished problem, so a killed
driver loses at most the line it was writing; a torn last line is cut off on
resume. When a run completes, the file is rewritten in dataset order (atomically)
so two runs with the same seed give identical files.

A result is *final* unless it carries a transient failure (``transient_failure``:
an outage, a 429, a 5xx, a dead actor). A non-final ("open") result is kept on
disk, so nothing is lost, but it does not count as done: the next attempt at that
problem appends a newer line, which supersedes it. Per problem the first final
line wins, else the last open one; ``finalize`` keeps exactly one line each.

Memory is flat in the number of problems: results go to disk as they land and the
writer keeps, per problem, only where its kept line is (a few dozen bytes) plus the
running totals the summary needs (``Tally``), never the results themselves.
"""

from __future__ import annotations

import math
import os
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO

from pydantic import ValidationError

from protocols.messages import (
    RESULT_ADAPTER,
    CallRecord,
    ProblemResult,
    ToolCallRecord,
    TraceEvent,
    Usage,
    transient_failure,
)
from protocols.summary import DomainStat, RunSummary

RESULTS = "results.jsonl"
SUMMARY = "summary.json"
CONFIG = "config.yaml"
LOG = "log.jsonl"


def scan_results(path: Path, visit: Callable[[ProblemResult, int, int], None]) -> int:
    """Stream a results file line by line into ``visit(result, offset, length)``; returns the valid prefix's length.

    Only a torn *last* line (a killed writer) is tolerated; a bad line in the middle
    is an error naming its line number, because silently dropping it would lose data.
    The file is never held in memory whole (it can be gigabytes at 100k problems).
    """
    if not path.exists():
        return 0
    good = 0
    with path.open("rb") as fh:
        line, number = fh.readline(), 1
        while line:
            following = fh.readline()  # one line of look-ahead: is this one the last?
            if not line.endswith(b"\n"):
                break  # the writer was killed mid-line
            if line.strip():
                try:
                    result = RESULT_ADAPTER.validate_json(line)
                except ValidationError as exc:
                    if not following:
                        break
                    raise ValueError(
                        f"{path}:{number}: not a valid result line ({exc.error_count()} errors); "
                        "fix or delete that line (or the run directory) and re-run"
                    ) from None
                visit(result, good, len(line))
            good += len(line)
            line, number = following, number + 1
    return good


def read_results(path: Path) -> tuple[list[ProblemResult], int]:
    """Every valid result of a results file, and the byte length of the valid prefix (small files, reports)."""
    results: list[ProblemResult] = []
    good = scan_results(path, lambda result, _offset, _length: results.append(result))
    return results, good


def is_final(result: ProblemResult) -> bool:
    """A result that stands: an answer, or a permanent failure (not an outage, 429, 5xx, dead actor)."""
    return transient_failure(result) is None


def latest(results: Iterable[ProblemResult]) -> dict[str, ProblemResult]:
    """One result per problem in file order: the first final one, else the last open one."""
    kept: dict[str, ProblemResult] = {}
    for result in results:
        known = kept.get(result.problem_id)
        if known is None or not is_final(known):
            kept[result.problem_id] = result
    return kept


class Tally:
    """Running totals of a run's results: everything ``RunSummary`` needs, nothing per problem but a float."""

    def __init__(self) -> None:
        self.n = self.correct = self.still_open = 0
        self.calls = self.failed_calls = self.retries = 0
        self.cost_usd = 0.0
        self.prompt_tokens = self.completion_tokens = 0
        self.domains: dict[str, list[int]] = {}
        self.errors: Counter[str] = Counter()
        self.sources: Counter[str] = Counter()
        self.walls = array("d")  # 8 bytes a problem, for the latency percentiles

    @classmethod
    def of(cls, results: Iterable[ProblemResult]) -> Tally:
        tally = cls()
        for result in results:
            tally.add(result)
        return tally

    def add(self, r: ProblemResult) -> None:
        self.n += 1
        self.correct += r.correct
        stat = self.domains.setdefault(r.domain or "all", [0, 0])
        stat[0] += 1
        stat[1] += r.correct
        if r.error is not None:
            self.errors[r.error.error] += 1
        self.still_open += not is_final(r)
        self.prompt_tokens += r.totals.usage.prompt_tokens  # ints, not a new Usage a problem
        self.completion_tokens += r.totals.usage.completion_tokens
        count_sources(r.trace, self.sources)
        self.cost_usd += r.totals.cost_usd
        self.calls += r.totals.calls
        self.failed_calls += r.totals.failed_calls
        self.retries += r.totals.retries
        self.walls.append(r.wall_s)

    @property
    def usage(self) -> Usage:
        return Usage(prompt_tokens=self.prompt_tokens, completion_tokens=self.completion_tokens)

    def summary(self, *, run_id: str, name: str, orchestrator: str, dataset: str, n_expected: int) -> RunSummary:
        """The run summary; errors are counted apart and as wrong."""
        n = self.n
        low, high = wilson(self.correct, n)
        walls = sorted(self.walls)
        usage = self.usage
        return RunSummary(
            run_id=run_id,
            name=name,
            orchestrator=orchestrator,
            dataset=dataset,
            n=n,
            n_expected=n_expected,
            correct=self.correct,
            accuracy=self.correct / n if n else 0.0,
            ci95_low=low,
            ci95_high=high,
            per_domain={
                d: DomainStat(n=count, correct=right, accuracy=right / count)
                for d, (count, right) in sorted(self.domains.items())
            },
            errors=sum(self.errors.values()),
            error_kinds=dict(sorted(self.errors.items())),
            open_failures=self.still_open,
            missing=max(0, n_expected - n),
            usage=usage,
            tokens_per_problem=usage.total_tokens / n if n else 0.0,
            cost_usd=self.cost_usd,
            calls=self.calls,
            failed_calls=self.failed_calls,
            retries=self.retries,
            latency_p50_s=_percentile(walls, 0.5),
            latency_p95_s=_percentile(walls, 0.95),
            sources=dict(sorted(self.sources.items())),
        )


# What a problem's kept line is: its answer counts (done), or it may still be superseded.
_DONE, _OPEN, _REOPENED = 0, 1, 2


class ResultsWriter:
    """Appends results, one flushed line each; a final result is never replaced or duplicated.

    Per problem it keeps only its kept line's place in the file (dataset index, offset,
    length, state); ``tally`` sums the results that are done as they land, and the few
    that may still be superseded (open, or re-opened by ``retry_failed``) are read back
    from the file by ``finalize``.

    Args:
        run_dir: the run directory holding ``results.jsonl``.
        retry_failed: treat every recorded failure as not done, permanent ones too
            (``slmsim run --retry-failed``, e.g. after fixing a server's configuration).
    """

    def __init__(self, run_dir: Path, *, retry_failed: bool = False) -> None:
        self.path = run_dir / RESULTS
        self.retry_failed = retry_failed
        self.tally = Tally()
        self._slot: dict[str, int] = {}
        self._index, self._offset, self._length = array("q"), array("q"), array("q")
        self._state = bytearray()
        self._final = bytearray()  # 1: the kept line is final (a later line never replaces it on a re-read)
        good = scan_results(self.path, self._load)
        if self.path.exists() and good < self.path.stat().st_size:
            with self.path.open("r+b") as fh:
                fh.truncate(good)
        self._fh: IO[bytes] = self.path.open("ab")
        self._end = good

    def _done(self, result: ProblemResult) -> bool:
        return is_final(result) and not (self.retry_failed and result.error is not None)

    def _load(self, result: ProblemResult, offset: int, length: int) -> None:
        slot = self._slot.get(result.problem_id)
        if slot is not None and self._final[slot]:
            return  # the first final line wins
        self._keep(result, offset, length)

    def _keep(self, result: ProblemResult, offset: int, length: int) -> None:
        slot = self._slot.get(result.problem_id)
        if slot is None:
            slot = self._slot[result.problem_id] = len(self._state)
            self._index.append(result.index)
            self._offset.append(offset)
            self._length.append(length)
            self._state.append(_OPEN)
            self._final.append(0)
        self._index[slot], self._offset[slot], self._length[slot] = result.index, offset, length
        final = is_final(result)
        self._final[slot] = final
        self._state[slot] = _DONE if self._done(result) else (_REOPENED if final else _OPEN)
        if self._state[slot] == _DONE:
            self.tally.add(result)  # a done line is never superseded: count it once, now

    def __contains__(self, problem_id: object) -> bool:
        """True if the problem has any recorded result (done or not)."""
        return problem_id in self._slot

    @property
    def recorded(self) -> int:
        """How many problems have a recorded result (done or not)."""
        return len(self._slot)

    def is_done(self, problem_id: str) -> bool:
        slot = self._slot.get(problem_id)
        return slot is not None and self._state[slot] == _DONE

    @property
    def done_ids(self) -> set[str]:
        """Problems with a result that stands: resume skips exactly these."""
        return {pid for pid, slot in self._slot.items() if self._state[slot] == _DONE}

    @property
    def open_ids(self) -> set[str]:
        """Problems whose recorded result is not final (a transient failure)."""
        return {pid for pid, slot in self._slot.items() if not self._final[slot]}

    def append(self, result: ProblemResult) -> bool:
        """Record a result; returns False (and writes nothing) if the problem already has a final one.

        A result for a problem whose recorded one is open (or, with ``retry_failed``, failed)
        is appended and supersedes it.
        """
        if self.is_done(result.problem_id):
            return False
        line = (result.model_dump_json() + "\n").encode()
        self._fh.write(line)
        self._fh.flush()
        self._keep(result, self._end, len(line))
        self._end += len(line)
        return True

    def close(self) -> None:
        self._fh.close()

    def _order(self) -> list[int]:
        """Slots in dataset order: a list of ints (not a tuple with the id per problem: 100k of those
        were ~10 MB at the end of a run, when the driver's peak is taken)."""
        return sorted(range(len(self._state)), key=self._index.__getitem__)

    def kept(self) -> Iterator[ProblemResult]:
        """The kept result of each problem, in dataset order, read back from the file one at a time."""
        with self.path.open("rb") as fh:
            for slot in self._order():
                fh.seek(self._offset[slot])
                yield RESULT_ADAPTER.validate_json(fh.read(self._length[slot]))

    def finalize(self) -> Tally:
        """Rewrite the file in dataset order, one line per problem (atomic replace); returns the totals.

        Lines are copied as bytes, so only the results not yet counted (open or re-opened
        ones) are parsed again.
        """
        self.close()
        tmp = self.path.with_suffix(".jsonl.tmp")
        with self.path.open("rb") as src, tmp.open("wb") as dst:
            for slot in self._order():
                src.seek(self._offset[slot])
                line = src.read(self._length[slot])
                if self._state[slot] != _DONE:
                    self.tally.add(RESULT_ADAPTER.validate_json(line))
                    self._state[slot] = _DONE  # counted: a second finalize must not count it again
                self._offset[slot] = dst.tell()
                dst.write(line)
            dst.flush()
            os.fsync(dst.fileno())
        os.replace(tmp, self.path)
        return self.tally


def wilson(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a proportion (well-behaved at 0 and n)."""
    if n == 0:
        return 0.0, 0.0
    p = correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def _percentile(ordered: list[float], q: float) -> float:
    if not ordered:
        return 0.0
    pos = (len(ordered) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def count_sources(trace: Iterable[TraceEvent], counts: Counter[str]) -> None:
    """Count completions per backend kind (sim / live / replay), nested tool calls included."""
    for event in trace:
        if isinstance(event, CallRecord) and event.reply.kind == "completion":
            counts[event.reply.source] += 1
        elif isinstance(event, ToolCallRecord):
            count_sources(event.trace, counts)


def summarize(
    results: Iterable[ProblemResult], *, run_id: str, name: str, orchestrator: str, dataset: str, n_expected: int
) -> RunSummary:
    """Aggregate results into the run summary; errors are counted apart and as wrong."""
    return Tally.of(results).summary(
        run_id=run_id, name=name, orchestrator=orchestrator, dataset=dataset, n_expected=n_expected
    )


SIMULATED_SOURCES = frozenset({"sim", "sim-served"})
"""Source kinds whose completions came from the simulator (in process, or behind serve-sim)."""


def source_kinds(summary: RunSummary) -> list[str]:
    """The backend kinds (sim / live / replay) that produced at least one completion, sorted."""
    return [k for k, v in sorted(summary.sources.items()) if v]


def source_label(summary: RunSummary) -> str:
    """How a result should be labelled in words: simulated, live, replayed, or a mix."""
    names = {
        "sim": "simulated",
        "live": "live",
        "replay": "replayed",
        "sim-served": "simulated (served)",
        "fake": "FAKE (test double)",
    }
    return "+".join(names.get(k, k) for k in source_kinds(summary)) or "none"
