"""The alpha-UMi tool world: recorded observations replayed by (tool, arguments), plus real local tools.

Matching rules (``docs/alpha_umi.md``):

- A call names a tool of its task's list, and its arguments parse to a JSON object that
  equals a recorded call's parsed arguments (key order and whitespace do not matter; types
  do: ``"1"`` is not ``1``): the recorded observation. When the same call was recorded
  several times, the recordings are returned in order, then the last again.
- A tool not in the task's list (nor a local tool): ``hallucinated``.
- Arguments that are not a JSON object: ``bad_arguments``.
- A listed tool with arguments never recorded: ``no_recording``, with a message the agent
  sees as the observation, and the call is counted.
- ``calculator`` (when enabled): computed for real by sympy (``local``, or ``tool_error``).

Only the trajectory's own caller/observation pairs are recordings; the failed calls that
DFSDT restarts quote inside later user turns are not used (their outputs are cut).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from typing import Any, NamedTuple

from actors import calculator
from protocols.alpha_umi import Observation, ToolCall

NO_RECORDING = (
    '{"error": "", "response": "No recorded response for these arguments (replayed environment); '
    'the recorded trajectory called this API with other arguments."}'
)


class Recording(NamedTuple):
    """One recorded call of a trajectory and what the API answered."""

    position: int
    """Which recorded call of the trajectory (0-based)."""
    tool: str
    arguments: str
    """Canonical JSON of the parsed arguments (sorted keys)."""
    observation: str


def canonical(action_input: str) -> str | None:
    """The matching key of an argument text: sorted-key JSON of the parsed object, None if not an object."""
    try:
        value = json.loads(action_input)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def recordings_of(conversations: Iterable[dict[str, Any]]) -> list[Recording]:
    """The (call, observation) pairs of one alpha-UMi trajectory, in order."""
    turns = list(conversations)
    out: list[Recording] = []
    for i, turn in enumerate(turns[:-1]):
        nxt = turns[i + 1]
        if turn["from"] != "caller" or nxt["from"] != "observation":
            continue
        text = str(turn["value"])
        if "Action Input:" not in text:
            continue
        head, _, raw = text.partition("Action Input:")
        tool = head.replace("Action:", "").strip()
        key = canonical(raw.strip())
        if key is not None:
            out.append(Recording(len(out), tool, key, str(nxt["value"])))
    return out


class ReplayToolEnv:
    """Answers the tool calls of many tasks at once; a plain class, made remote by the experiment driver."""

    def __init__(self, records: dict[str, dict[str, Any]], local_tools: tuple[str, ...] = ()) -> None:
        self.tools = {tid: {str(t["Name"]) for t in r["tools"]} for tid, r in records.items()}
        self.recordings = {tid: recordings_of(r["conversations"]) for tid, r in records.items()}
        self.local_tools = set(local_tools)
        self._served: dict[tuple[str, str, str], int] = {}
        self.counts: dict[str, int] = {}

    async def call(self, request: ToolCall) -> Observation:
        """The observation for one call (never raises for a bad call: the status says what happened)."""
        observation = await self._answer(request)
        self.counts[observation.status] = self.counts.get(observation.status, 0) + 1
        return observation

    async def _answer(self, request: ToolCall) -> Observation:
        if request.task_id not in self.tools:
            return Observation(status="tool_error", text=f"unknown task {request.task_id!r}")
        if request.tool in self.local_tools:
            observation = await self._local(request)
            hit = self._match(request, canonical(request.action_input))
            # A real call that repeats a recorded one still counts as reproducing it.
            return observation.model_copy(update={"gold_index": hit.position if hit else None})
        if request.tool not in self.tools[request.task_id]:
            return Observation(
                status="hallucinated",
                text=json.dumps({"error": f"No such function name: {request.tool}", "response": ""}),
            )
        key = canonical(request.action_input)
        if key is None:
            return Observation(
                status="bad_arguments",
                text=json.dumps({"error": "Action Input is not a JSON object", "response": ""}),
            )
        hit = self._match(request, key)
        if hit is None:
            return Observation(status="no_recording", text=NO_RECORDING)
        return Observation(status="recorded", text=hit.observation, gold_index=hit.position)

    def _match(self, request: ToolCall, key: str | None) -> Recording | None:
        """The recording for this call: repeats of one call are served in order, then the last again."""
        matches = [r for r in self.recordings[request.task_id] if r.tool == request.tool and r.arguments == key]
        if key is None or not matches:
            return None
        served = self._served.get((request.task_id, request.tool, key), 0)
        self._served[(request.task_id, request.tool, key)] = served + 1
        return matches[min(served, len(matches) - 1)]

    async def _local(self, request: ToolCall) -> Observation:
        try:
            # sympy work off the event loop, so other tasks' calls are not held up.
            text = await asyncio.to_thread(calculator.run, request.action_input)
        except calculator.CalculatorError as exc:
            return Observation(status="tool_error", text=json.dumps({"error": str(exc), "response": ""}))
        return Observation(status="local", text=text)

    async def stats(self) -> dict[str, int]:
        """How many observations of each status were served."""
        return dict(self.counts)


class RemoteToolEnv:
    """The ``ToolEnv`` interface over a Ray actor handle."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    async def call(self, request: ToolCall) -> Observation:
        return await self.handle.call.remote(request)  # type: ignore[no-any-return]
