"""The grading benchmark runs end to end on a small count and ends with the throughput line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from benchmarks.grading import gsm8k_answers, math_answers, run
from datasets import load_problems
from protocols.config import DatasetSpec


async def test_small_run_prints_the_rate_last(shared_datasets: Path, capsys: pytest.CaptureFixture[str]) -> None:
    await run(400, 32)
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("graded 400 answers:")
    assert re.fullmatch(r"elapsed \d+\.\d\d s, \d+ answers/s", lines[-1])


def test_generated_answers_are_distinct_and_varied(shared_datasets: Path) -> None:
    import random

    problem = load_problems(DatasetSpec(name="math500", limit=1))[0]
    texts = math_answers(problem, random.Random(0), 10)
    assert len(set(texts)) == 10
    assert any(r"\boxed{" + problem.reference + "}" in t for t in texts)
    gsm = load_problems(DatasetSpec(name="gsm8k", limit=1))[0]
    assert len(set(gsm8k_answers(gsm, random.Random(0), 5))) == 5
