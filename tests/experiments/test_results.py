"""Results file: append, torn-line recovery, no duplicates, dataset-order finalisation, summary maths."""

from __future__ import annotations

from pathlib import Path

import pytest

from experiments.runtime.results import ResultsWriter, read_results, summarize, wilson
from protocols.messages import CallRecord, Completion, Failure, ProblemResult, Totals, Usage


def _result(i: int, correct: bool = True, domain: str = "Algebra", error: Failure | None = None) -> ProblemResult:
    reply = Completion(model="m", text="t", usage=Usage(prompt_tokens=10, completion_tokens=i), source="sim")
    return ProblemResult(
        run_id="r",
        problem_id=f"p{i}",
        index=i,
        benchmark="math500",
        domain=domain,
        orchestrator="single",
        reference="1",
        correct=correct,
        error=error,
        totals=Totals(usage=reply.usage, calls=1),
        trace=(CallRecord(model="m", role="solver", reply=reply),),
        wall_s=0.1 * i,
    )


def test_torn_last_line_is_dropped_and_truncated(tmp_path: Path) -> None:
    writer = ResultsWriter(tmp_path)
    for i in range(3):
        writer.append(_result(i))
    writer.close()
    path = tmp_path / "results.jsonl"
    with path.open("ab") as fh:  # a writer killed mid-line
        fh.write(_result(3).model_dump_json().encode()[:50])
    results, good = read_results(path)
    assert [r.problem_id for r in results] == ["p0", "p1", "p2"]
    resumed = ResultsWriter(tmp_path)
    assert resumed.done_ids == {"p0", "p1", "p2"}
    assert path.stat().st_size == good
    assert resumed.append(_result(3))
    assert not resumed.append(_result(1)), "a duplicate must not be written"
    resumed.close()
    assert [r.problem_id for r in read_results(path)[0]] == ["p0", "p1", "p2", "p3"]


def test_corrupt_middle_line_is_an_error_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    path.write_text(_result(0).model_dump_json() + "\n{not json}\n" + _result(1).model_dump_json() + "\n")
    with pytest.raises(ValueError, match=r"results.jsonl:2"):
        read_results(path)


def test_finalize_orders_by_dataset_index(tmp_path: Path) -> None:
    writer = ResultsWriter(tmp_path)
    for i in (4, 0, 3, 1, 2):
        writer.append(_result(i))
    tally = writer.finalize()
    assert [r.index for r in writer.kept()] == [0, 1, 2, 3, 4]
    assert tally.n == 5
    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    assert [ProblemResult.model_validate_json(x).index for x in lines] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(("k", "n"), [(0, 10), (10, 10), (5, 10), (480, 500)])
def test_wilson_interval_contains_estimate(k: int, n: int) -> None:
    low, high = wilson(k, n)
    assert 0.0 <= low <= k / n <= high <= 1.0
    assert high - low < 0.7


def test_summary_counts_errors_apart_and_per_domain() -> None:
    results = [
        _result(0, True, "Algebra"),
        _result(1, False, "Algebra"),
        _result(2, True, "Geometry"),
        _result(3, False, "Geometry", error=Failure(error="timeout", message="x")),
    ]
    s = summarize(results, run_id="r", name="n", orchestrator="single", dataset="math500", n_expected=4)
    assert (s.n, s.correct, s.errors) == (4, 2, 1)
    assert s.accuracy == 0.5
    assert s.error_kinds == {"timeout": 1}
    assert s.per_domain["Algebra"].accuracy == 0.5
    assert s.sources == {"sim": 4}
    assert s.usage.prompt_tokens == 40
    assert s.latency_p50_s == pytest.approx(0.15)


def test_writer_keeps_no_results_and_its_totals_match_the_file(tmp_path: Path) -> None:
    """The writer sums results as they land (memory flat in N); its summary equals one rebuilt from disk."""
    outage = Failure(error="server", message="HTTP 503", retryable=True)
    writer = ResultsWriter(tmp_path)
    writer.append(_result(0, error=outage))
    writer.append(_result(1, correct=False))
    writer.close()
    resumed = ResultsWriter(tmp_path, retry_failed=True)
    assert not hasattr(resumed, "results"), "no per-problem result objects are kept"
    assert resumed.append(_result(0)), "the open failure is superseded"
    resumed.append(_result(2, error=Failure(error="client", message="HTTP 400")))
    assert resumed.append(_result(2)), "with retry_failed a permanent failure is superseded too"
    resumed.append(_result(3, correct=False, error=outage))
    tally = resumed.finalize()
    from_disk = summarize(
        read_results(tmp_path / "results.jsonl")[0],
        run_id="r", name="n", orchestrator="single", dataset="math500", n_expected=5,
    )  # fmt: skip
    assert tally.summary(run_id="r", name="n", orchestrator="single", dataset="math500", n_expected=5) == from_disk
    assert (from_disk.n, from_disk.correct, from_disk.errors, from_disk.open_failures) == (4, 2, 1, 1)
    assert resumed.finalize().n == 4, "finalizing twice counts nothing twice"
