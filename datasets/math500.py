"""MATH-500 (the PRM800K test split of Hendrycks MATH): one JSON object per line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from datasets.errors import DatasetError
from datasets.records import read_jsonl, require
from protocols.messages import Problem


def load_math500(path: Path) -> list[Problem]:
    """Problems with ``id`` = ``unique_id``, ``domain`` = subject, ``level`` 1-5, the solution in metadata."""
    return list(iter_math500(path))


def iter_math500(path: Path) -> Iterator[Problem]:
    """``load_math500`` one problem at a time; only the ids seen so far are kept (duplicates are an error)."""
    seen: dict[str, int] = {}
    for line, record in read_jsonl(path):
        uid = require(record, "unique_id", str, path=path, line=line)
        level = require(record, "level", int, path=path, line=line)
        if not 1 <= level <= 5:
            raise DatasetError(f"expected 1-5, got {level}", path=path, line=line, field="level")
        if uid in seen:
            raise DatasetError(
                f"duplicate id {uid!r} (first on line {seen[uid]})", path=path, line=line, field="unique_id"
            )
        seen[uid] = line
        yield (
            Problem(
                id=uid,
                benchmark="math500",
                question=require(record, "problem", str, path=path, line=line),
                reference=require(record, "answer", str, path=path, line=line).strip(),
                answer_format="boxed",
                domain=require(record, "subject", str, path=path, line=line),
                level=level,
                metadata={"solution": require(record, "solution", str, path=path, line=line)},
            )
        )
