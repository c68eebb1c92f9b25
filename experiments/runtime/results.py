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
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Iterable
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


def read_results(path: Path) -> tuple[list[ProblemResult], int]:
    """Read a results file; returns the valid results and the byte length of the valid prefix.

    Only a torn *last* line (a killed writer) is tolerated; a bad line in the middle
    is an error naming its line number, because silently dropping it would lose data.
    """
    if not path.exists():
        return [], 0
    lines = path.read_bytes().splitlines(keepends=True)
    results: list[ProblemResult] = []
    good = 0
    for number, line in enumerate(lines, start=1):
        if not line.endswith(b"\n"):
            break  # the writer was killed mid-line
        if line.strip():
            try:
                results.append(RESULT_ADAPTER.validate_json(line))
            except ValidationError as exc:
                if number == len(lines):
                    break
                raise ValueError(
                    f"{path}:{number}: not a valid result line ({exc.error_count()} errors); "
                    "fix or delete that line (or the run directory) and re-run"
                ) from None
        good += len(line)
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


class ResultsWriter:
    """Appends results, one flushed line each; a final result is never replaced or duplicated.

    Args:
        run_dir: the run directory holding ``results.jsonl``.
        retry_failed: treat every recorded failure as not done, permanent ones too
            (``slmsim run --retry-failed``, e.g. after fixing a server's configuration).
    """

    def __init__(self, run_dir: Path, *, retry_failed: bool = False) -> None:
        self.path = run_dir / RESULTS
        self.retry_failed = retry_failed
        existing, good = read_results(self.path)
        if self.path.exists() and good < self.path.stat().st_size:
            with self.path.open("r+b") as fh:
                fh.truncate(good)
        self.results: dict[str, ProblemResult] = latest(existing)
        self._fh: IO[str] = self.path.open("a", encoding="utf-8")

    def _done(self, result: ProblemResult) -> bool:
        return is_final(result) and not (self.retry_failed and result.error is not None)

    @property
    def done_ids(self) -> set[str]:
        """Problems with a result that stands: resume skips exactly these."""
        return {pid for pid, result in self.results.items() if self._done(result)}

    @property
    def open_ids(self) -> set[str]:
        """Problems whose recorded result is not final (a transient failure)."""
        return {pid for pid, result in self.results.items() if not is_final(result)}

    def append(self, result: ProblemResult) -> bool:
        """Record a result; returns False (and writes nothing) if the problem already has a final one.

        A result for a problem whose recorded one is open (or, with ``retry_failed``, failed)
        is appended and supersedes it.
        """
        known = self.results.get(result.problem_id)
        if known is not None and self._done(known):
            return False
        self._fh.write(result.model_dump_json() + "\n")
        self._fh.flush()
        self.results[result.problem_id] = result
        return True

    def close(self) -> None:
        self._fh.close()

    def finalize(self) -> list[ProblemResult]:
        """Rewrite the file in dataset order (atomic replace); returns the ordered results."""
        self.close()
        ordered = sorted(self.results.values(), key=lambda r: (r.index, r.problem_id))
        tmp = self.path.with_suffix(".jsonl.tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            for result in ordered:
                fh.write(result.model_dump_json() + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        return ordered


def wilson(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a proportion (well-behaved at 0 and n)."""
    if n == 0:
        return 0.0, 0.0
    p = correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
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
    results: list[ProblemResult], *, run_id: str, name: str, orchestrator: str, dataset: str, n_expected: int
) -> RunSummary:
    """Aggregate results into the run summary; errors are counted apart and as wrong."""
    n = len(results)
    correct = sum(r.correct for r in results)
    low, high = wilson(correct, n)
    domains: dict[str, list[bool]] = {}
    for r in results:
        domains.setdefault(r.domain or "all", []).append(r.correct)
    usage = Usage()
    sources: Counter[str] = Counter()
    errors = Counter(r.error.error for r in results if r.error is not None)
    still_open = sum(not is_final(r) for r in results)
    for r in results:
        usage = usage + r.totals.usage
        count_sources(r.trace, sources)
    walls = [r.wall_s for r in results]
    return RunSummary(
        run_id=run_id,
        name=name,
        orchestrator=orchestrator,
        dataset=dataset,
        n=n,
        n_expected=n_expected,
        correct=correct,
        accuracy=correct / n if n else 0.0,
        ci95_low=low,
        ci95_high=high,
        per_domain={
            d: DomainStat(n=len(v), correct=sum(v), accuracy=sum(v) / len(v)) for d, v in sorted(domains.items())
        },
        errors=sum(errors.values()),
        error_kinds=dict(sorted(errors.items())),
        open_failures=still_open,
        missing=max(0, n_expected - n),
        usage=usage,
        tokens_per_problem=usage.total_tokens / n if n else 0.0,
        cost_usd=sum(r.totals.cost_usd for r in results),
        calls=sum(r.totals.calls for r in results),
        failed_calls=sum(r.totals.failed_calls for r in results),
        retries=sum(r.totals.retries for r in results),
        latency_p50_s=_percentile(walls, 0.5),
        latency_p95_s=_percentile(walls, 0.95),
        sources=dict(sorted(sources.items())),
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
