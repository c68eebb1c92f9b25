"""Reading JSONL/JSON records with errors that name the file, line and field."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

from datasets.errors import DatasetError

T = TypeVar("T")


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (1-based line number, object) for each non-blank line of a JSONL file."""
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"invalid JSON ({exc.msg} at column {exc.colno})", path=path, line=number) from None
            if not isinstance(record, dict):
                raise DatasetError(f"expected a JSON object, got {type(record).__name__}", path=path, line=number)
            yield number, record


def read_json(path: Path) -> Any:
    """Load a whole JSON file, reporting the line of a syntax error."""
    try:
        with path.open(encoding="utf-8") as handle:
            return json.load(handle)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"invalid JSON ({exc.msg} at column {exc.colno})", path=path, line=exc.lineno) from None


def require(record: dict[str, Any], field: str, kind: type[T], *, path: Path, line: int | None) -> T:
    """``record[field]`` checked to be a ``kind`` (a non-empty one, for strings)."""
    if field not in record:
        raise DatasetError("missing", path=path, line=line, field=field)
    value = record[field]
    # bool is an int in Python; a level of True is still malformed.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise DatasetError(
            f"expected {kind.__name__}, got {type(value).__name__} {value!r:.60}", path=path, line=line, field=field
        )
    if isinstance(value, str) and not value.strip():
        raise DatasetError("empty", path=path, line=line, field=field)
    return value
