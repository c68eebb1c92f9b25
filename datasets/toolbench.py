"""ToolBench static test trajectories in the alpha-UMi planner / caller / summarizer format."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from datasets.errors import DatasetError
from datasets.records import read_json, require

TurnRole = Literal["user", "assistant", "caller", "observation", "conclusion"]
NextStep = Literal["caller", "conclusion", "give up"]

_NEXT = re.compile(r"Next:\s*(caller|conclusion|give up)\s*\.?\s*$", re.IGNORECASE)
_CALL = re.compile(r"^\s*Action:\s*(?P<action>[^\n]+?)\s*\nAction Input:\s*(?P<input>.*)$", re.DOTALL)


class Record(BaseModel):
    """Base of the records here: immutable, unknown fields rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class ToolSpec(Record):
    """One tool offered to the agent: name, description, and parameter -> "type, description"."""

    name: str
    description: str
    parameters: dict[str, str] = {}


class ToolTurn(Record):
    """One conversation turn; ``assistant`` is the planner, ``conclusion`` the summarizer."""

    role: TurnRole
    content: str
    next: NextStep | None = None
    """planner turns: where the rationale says to go next."""
    action: str | None = None
    """caller turns: the tool called."""
    action_input: str | None = None
    """caller turns: the arguments as written."""
    arguments: dict[str, Any] | None = None
    """caller turns: the arguments parsed as a JSON object, None if they are not one."""


class ToolTask(Record):
    """One ToolBench task: the instruction, its tools, and the recorded trajectory."""

    id: str
    instruction: str
    tools: tuple[ToolSpec, ...]
    turns: tuple[ToolTurn, ...]

    @property
    def final_answer(self) -> str | None:
        """The summarizer's answer, None when the trajectory gave up."""
        for turn in reversed(self.turns):
            if turn.role == "conclusion":
                return turn.content
        return None


def parse_turn(role: str, content: str) -> ToolTurn:
    """A typed turn, with the planner's ``Next:`` and the caller's action and arguments read out."""
    if role == "assistant":
        m = _NEXT.search(content)
        return ToolTurn(role="assistant", content=content, next=m.group(1).lower() if m else None)  # type: ignore[arg-type]
    if role == "caller":
        m = _CALL.match(content)
        if m is None:
            return ToolTurn(role="caller", content=content)
        raw = m.group("input").strip()
        try:
            parsed = json.loads(raw)
        except json.JSONDecodeError:
            parsed = None
        return ToolTurn(
            role="caller",
            content=content,
            action=m.group("action"),
            action_input=raw,
            arguments=parsed if isinstance(parsed, dict) else None,
        )
    return ToolTurn(role=role, content=content)  # type: ignore[arg-type]


def load_toolbench(path: Path) -> list[ToolTask]:
    """All tasks of an alpha-UMi ToolBench JSON file (a list of records)."""
    data = read_json(path)
    if not isinstance(data, list):
        raise DatasetError(f"expected a JSON list of records, got {type(data).__name__}", path=path)
    roles = set(TurnRole.__args__)  # type: ignore[attr-defined]
    tasks = []
    for index, record in enumerate(data):
        where = f"record {index}"
        if not isinstance(record, dict):
            raise DatasetError(f"{where}: expected an object", path=path)
        instruction = require(record, "instruction", str, path=path, line=None)
        tools = []
        for t_index, tool in enumerate(require(record, "tools", list, path=path, line=None)):
            if not isinstance(tool, dict) or "Name" not in tool:
                raise DatasetError(f"{where}: tool {t_index} has no 'Name'", path=path, field="tools")
            inputs = tool.get("input") or {}
            tools.append(
                ToolSpec(
                    name=tool["Name"],
                    description=str(tool.get("function", "")),
                    parameters={str(k): str(v) for k, v in inputs.items()},
                )
            )
        turns = []
        for c_index, turn in enumerate(require(record, "conversations", list, path=path, line=None)):
            role = turn.get("from") if isinstance(turn, dict) else None
            if role not in roles or not isinstance(turn.get("value"), str):
                raise DatasetError(
                    f"{where}: conversation turn {c_index} has role {role!r}; expected one of {sorted(roles)} "
                    "with a string 'value'",
                    path=path,
                    field="conversations",
                )
            turns.append(parse_turn(str(role), turn["value"]))
        tasks.append(
            ToolTask(
                id=f"toolbench/{path.stem}/{index}", instruction=instruction, tools=tuple(tools), turns=tuple(turns)
            )
        )
    return tasks
