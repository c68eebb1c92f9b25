"""A run's problems as a stream: counted and checked once, then read again as they are fed, resume-aware."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from datasets import DatasetError
from experiments.runtime.preflight import load_dataset
from experiments.runtime.results import ResultsWriter
from experiments.runtime.source import ProblemSource, pending, unfinished
from protocols.config import DatasetSpec
from protocols.messages import ProblemResult


def _gsm8k_file(path: Path, n: int, bad_at: int | None = None) -> Path:
    lines = [json.dumps({"question": f"{i}+1?", "answer": f"so #### {i + 1}"}) for i in range(n)]
    if bad_at is not None:
        lines[bad_at] = "{oops"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_streamed_dataset_is_counted_then_read_again_in_order(tmp_path: Path) -> None:
    spec = DatasetSpec(name="gsm8k", split="train", path=_gsm8k_file(tmp_path / "g.jsonl", 30), offset=2, limit=20)
    source = ProblemSource.of_dataset(spec)
    assert len(source) == 20
    assert list(source) == list(source) == load_dataset(spec)  # each iteration reads the file afresh


def test_a_bad_line_is_reported_by_the_counting_pass_before_anything_runs(tmp_path: Path) -> None:
    spec = DatasetSpec(name="gsm8k", split="train", path=_gsm8k_file(tmp_path / "g.jsonl", 30, bad_at=25))
    with pytest.raises(DatasetError, match=r"g.jsonl:26: invalid JSON"):
        ProblemSource.of_dataset(spec)


def test_resume_counts_and_feeds_only_the_problems_without_a_standing_result(tmp_path: Path) -> None:
    spec = DatasetSpec(name="gsm8k", split="train", path=_gsm8k_file(tmp_path / "g.jsonl", 10))
    source = ProblemSource.of_dataset(spec)
    fresh = ResultsWriter(tmp_path)
    assert pending(source, fresh) == (10, 0)
    problems = list(source)
    for i in (1, 4):
        fresh.append(
            ProblemResult(
                run_id="r", problem_id=problems[i].id, index=i, benchmark="gsm8k", orchestrator="single",
                reference=problems[i].reference, final_text="x", correct=False,
            )
        )  # fmt: skip
    assert pending(source, fresh) == (8, 0)
    assert [i for i, _ in unfinished(source, fresh)] == [0, 2, 3, 5, 6, 7, 8, 9]
    fresh.close()
