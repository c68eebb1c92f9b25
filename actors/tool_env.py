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
    """One recorded call and what the API answered."""

    position: int | None
    """Which gold call of the task it is (0-based), None for a recorded call outside the gold sequence."""
    tool: str
    arguments: str
    """Canonical JSON of the parsed arguments (sorted keys)."""
    observation: str


def task_world(record: dict[str, Any]) -> tuple[list[tuple[str, str | None]], list[Recording]]:
    """A task's gold calls (tool, canonical arguments) and its recordings.

    ToolBench records: both come from the trajectory's caller/observation pairs. Records with
    explicit ``gold_calls`` and ``recordings`` (ToolAlpaca: gold calls from the benchmark,
    observations from a recorded model run) use those; a recording equal to the k-th gold
    call stands for it.
    """
    if "recordings" not in record:
        recs = recordings_of(record["conversations"])
        return [(r.tool, r.arguments) for r in recs], recs
    # A gold call whose arguments are not JSON (a placeholder for an earlier result) matches by name: key None.
    gold = [(str(g["tool"]), canonical(str(g["action_input"]))) for g in record.get("gold_calls", [])]
    out = []
    for r in record["recordings"]:
        key = canonical(str(r["action_input"]))
        if key is not None:
            position = gold.index((str(r["tool"]), key)) if (str(r["tool"]), key) in gold else None
            out.append(Recording(position, str(r["tool"]), key, str(r["observation"])))
    return gold, out


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
        worlds = {tid: task_world(r) for tid, r in records.items()}
        self.gold = {tid: w[0] for tid, w in worlds.items()}
        self.recordings = {tid: w[1] for tid, w in worlds.items()}
        self.local_tools = set(local_tools)
        self._served: dict[tuple[str, str, str], int] = {}
        self._gold_seen: dict[tuple[str, str, str | None], int] = {}
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
            # A real call equal to a gold one still counts as reproducing it.
            return observation.model_copy(
                update={"gold_index": self._gold_of(request, canonical(request.action_input))}
            )
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
            return Observation(status="no_recording", text=NO_RECORDING, gold_index=self._gold_of(request, key))
        return Observation(status="recorded", text=hit.observation, gold_index=self._gold_of(request, key))

    def _gold_of(self, request: ToolCall, key: str | None) -> int | None:
        """The gold call this call reproduces: same tool and arguments, or a by-name gold call of that tool.

        The n-th such call of a task reproduces the n-th such gold call (a sequence may repeat a call).
        """
        gold = self.gold[request.task_id]
        if key is None:
            return None
        for candidate in ((request.tool, key), (request.tool, None)):
            positions = [i for i, g in enumerate(gold) if g == candidate]
            if positions:
                seen = self._gold_seen.get((request.task_id, *candidate), 0)
                self._gold_seen[(request.task_id, *candidate)] = seen + 1
                return positions[min(seen, len(positions) - 1)]
        return None

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

    @classmethod
    def spawn(cls, records: dict[str, dict[str, Any]], local_tools: tuple[str, ...], **options: Any) -> RemoteToolEnv:
        """The replayed tool world as one async actor (``options``: Ray actor options)."""
        import ray

        return cls(ray.remote(ReplayToolEnv).options(**options).remote(records, local_tools))

    def shutdown(self) -> None:
        """End the actor (the run that spawned it is over)."""
        import ray

        ray.kill(self.handle)

    async def call(self, request: ToolCall) -> Observation:
        return await self.handle.call.remote(request)  # type: ignore[no-any-return]
