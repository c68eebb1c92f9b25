"""ToolAlpaca evaluation sets: APIs with their functions, instructions and gold call sequences."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from datasets.errors import DatasetError
from datasets.records import read_json, require
from datasets.toolbench import Record


class GoldCall(Record):
    """One gold step: the function and its arguments (as written, and parsed when they are JSON)."""

    action: str
    action_input: str
    arguments: dict[str, Any] | None = None
    optional: bool = False
    """upstream marks optional steps as ``[Optional]name``."""


ASK_USER = "getDetails"
"""ToolAlpaca's pseudo-action for asking the user for missing details; it is in no API."""


class ToolAlpacaTask(Record):
    """One instruction against one API, with the API's functions and the gold call sequence."""

    id: str
    api: str
    category: str
    instruction: str
    functions: dict[str, str]
    """function name -> its NL description (parameters and output included)."""
    gold: tuple[GoldCall, ...]


def load_toolalpaca(path: Path) -> list[ToolAlpacaTask]:
    """The tasks of ``eval_simulated.json`` / ``eval_real.json``, with ids ``toolalpaca/<file>/<api>/<i>``."""
    data = read_json(path)
    if not isinstance(data, list):
        raise DatasetError(f"expected a JSON list of APIs, got {type(data).__name__}", path=path)
    tasks = []
    for a_index, api in enumerate(data):
        if not isinstance(api, dict):
            raise DatasetError(f"API {a_index}: expected an object", path=path)
        name = require(api, "Name", str, path=path, line=None)
        instructions = require(api, "Instructions", list, path=path, line=None)
        answers = require(api, "Golden_Answers", list, path=path, line=None)
        if len(answers) != len(instructions):
            raise DatasetError(
                f"API {name!r}: {len(instructions)} instructions but {len(answers)} gold answers",
                path=path,
                field="Golden_Answers",
            )
        # "components" in Function_Description is the OpenAPI components block, not a function.
        described = (api.get("Function_Description") or {}).items()
        functions = {str(k): str(v) for k, v in described if k != "components"}
        for i, (instruction, steps) in enumerate(zip(instructions, answers, strict=True)):
            gold = []
            for step in steps:
                if not isinstance(step, dict) or "Action" not in step or "Action_Input" not in step:
                    raise DatasetError(
                        f"API {name!r} instruction {i}: a gold step lacks Action/Action_Input",
                        path=path,
                        field="Golden_Answers",
                    )
                raw = str(step["Action_Input"])
                try:
                    parsed = json.loads(raw)
                except json.JSONDecodeError:
                    parsed = None
                action = str(step["Action"])
                gold.append(
                    GoldCall(
                        action=action.removeprefix("[Optional]"),
                        action_input=raw,
                        arguments=parsed if isinstance(parsed, dict) else None,
                        optional=action.startswith("[Optional]"),
                    )
                )
            tasks.append(
                ToolAlpacaTask(
                    id=f"toolalpaca/{path.stem}/{name}/{i}",
                    api=name,
                    category=str(api.get("Category", "")),
                    instruction=str(instruction),
                    functions=functions,
                    gold=tuple(gold),
                )
            )
    return tasks
