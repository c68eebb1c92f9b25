"""The one error type the loaders raise for missing or malformed data."""

from __future__ import annotations

from pathlib import Path


class DatasetError(ValueError):
    """Bad or missing dataset data, naming the file, line and field at fault."""

    def __init__(
        self, message: str, *, path: Path | str | None = None, line: int | None = None, field: str | None = None
    ) -> None:
        where = ""
        if path is not None:
            where = f"{path}" + (f":{line}" if line is not None else "")
        if field is not None:
            where += f"{': ' if where else ''}field {field!r}"
        super().__init__(f"{where}: {message}" if where else message)
        self.path = None if path is None else Path(path)
        self.line = line
        self.field = field
