"""GSM8K: ``{"question", "answer"}`` per line; the answer ends with ``#### n``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from datasets.errors import DatasetError
from datasets.grading.gsm8k import reference_answer
from datasets.records import read_jsonl, require
from protocols.messages import Problem

_CALCULATOR = re.compile(r"<<[^<>]*>>")


def load_gsm8k(path: Path, split: str) -> list[Problem]:
    """Problems with ``id`` = ``gsm8k/<split>/<0-based line>`` and ``metadata["steps"]`` = calculator calls."""
    return list(iter_gsm8k(path, split))


def iter_gsm8k(path: Path, split: str) -> Iterator[Problem]:
    """``load_gsm8k`` one problem at a time (a run streams its dataset instead of holding it)."""
    for index, (line, record) in enumerate(read_jsonl(path)):
        question = require(record, "question", str, path=path, line=line)
        solution = require(record, "answer", str, path=path, line=line)
        try:
            reference = reference_answer(solution)
        except ValueError:
            raise DatasetError("no '#### <number>' final answer", path=path, line=line, field="answer") from None
        yield (
            Problem(
                id=f"gsm8k/{split}/{index}",
                benchmark="gsm8k",
                question=question,
                reference=reference,
                answer_format="gsm8k",
                metadata={
                    "solution": solution,
                    # The simulator reads the number of calculator steps as a difficulty signal.
                    "steps": len(_CALCULATOR.findall(solution)),
                },
            )
        )
