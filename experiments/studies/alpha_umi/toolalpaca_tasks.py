"""ToolAlpaca simulated-API tasks as alpha-UMi records, with a replay world from ToolAlpaca-13B's recorded run.

- tools: each API function, ``{"Name", "function": its description, "input": its parameters}``;
- gold calls: the benchmark's ``Golden_Answers`` (``getDetails``, ToolAlpaca's ask-the-user pseudo-action,
  and ``[Optional]`` steps are left out of the required sequence); a gold argument placeholder that depends
  on an earlier result (not JSON) takes the recorded run's arguments for that tool, or else matches any
  arguments (by tool name only);
- recordings: the calls ToolAlpaca-13B made in ``eval_outputs_ToolAlpaca13b.json`` with the responses of
  ToolAlpaca's GPT-based API simulator (a call equal to a gold call replays; others get ``no_recording``);
- conversations: a gold trajectory for the simulator (a templated planner rationale, the gold calls, their
  recorded observations where there are some), ending with 13B's final response when GPT-4 judged it
  correct, else with no conclusion (no answer R-L for that task).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from datasets.paths import PACKAGED_DATA
from datasets.records import read_json
from datasets.toolalpaca import ASK_USER, load_toolalpaca

DATA = PACKAGED_DATA / "toolalpaca"
_STEP = re.compile(
    r"^\d+\. Function: (?P<tool>[^\n]+)\nParameters: (?P<params>[^\n]*)\nRetruns: (?P<obs>.*?)(?=^\d+\. |\Z)",
    re.DOTALL | re.MULTILINE,
)
_FINAL = re.compile(r"^\d+\. Final Response: (?P<answer>.*?)(?=\n## |\Z)", re.DOTALL | re.MULTILINE)


def _tools(api: dict[str, Any]) -> list[dict[str, Any]]:
    tools = []
    for name, text in (api.get("Function_Description") or {}).items():
        if name == "components":
            continue
        description, _, rest = str(text).partition("\nParameters: ")
        params_text = rest.split("\nOutput:", 1)[0]
        try:
            params = json.loads(params_text)
        except ValueError:
            params = {}
        tools.append({"Name": name, "function": description, "input": params if isinstance(params, dict) else {}})
    return tools


def recorded_run(item: dict[str, Any]) -> tuple[list[dict[str, str]], str | None]:
    """The calls (tool, arguments, response) and the final response of one recorded ToolAlpaca-13B solution."""
    content = item["input"][0]["content"] if item.get("input") else ""
    if "## AI Assistant's Solution" not in content:
        return [], None
    solution = content.split("## AI Assistant's Solution", 1)[1].split("\n## Analysis", 1)[0]
    calls = [
        {"tool": m["tool"].strip(), "action_input": m["params"].strip(), "observation": m["obs"].strip()}
        for m in _STEP.finditer(solution)
    ]
    final = _FINAL.search(solution)
    return calls, final["answer"].strip() if final else None


def _required(action: str, gold: Any) -> bool:
    return action != ASK_USER and not gold.optional


def _resolved(tool: str, action_input: str, calls: list[dict[str, str]]) -> str:
    """Gold arguments; a placeholder (``{"animeId": ${animeId from searchAnime}}``, not JSON) takes the
    arguments of the recorded run's call to the same tool, when it made one."""
    try:
        json.loads(action_input)
        return action_input
    except ValueError:
        return next((c["action_input"] for c in calls if c["tool"] == tool), action_input)


def toolalpaca_records(path: Path | None = None, outputs: Path | None = None) -> list[dict[str, Any]]:
    """One record per instruction of the simulated-API evaluation set that has a recorded 13B run."""
    path = path or DATA / "eval_simulated.json"
    runs = read_json(outputs or DATA / "eval_outputs_ToolAlpaca13b.json")
    apis = {a["Name"]: a for a in read_json(path)}
    records = []
    for task in load_toolalpaca(path):
        index = int(task.id.rsplit("/", 1)[1])
        items = runs.get(task.api, []) if isinstance(runs, dict) else []
        if index >= len(items) or not items[index].get("input"):
            continue  # the 3 runs upstream lost
        calls, final = recorded_run(items[index])
        gold = [(g.action, _resolved(g.action, g.action_input, calls)) for g in task.gold if _required(g.action, g)]
        conv: list[dict[str, str]] = [{"from": "user", "value": task.instruction}]
        by_call = {(c["tool"], c["action_input"]): c["observation"] for c in calls}
        for tool, args in gold:
            conv.append({"from": "assistant", "value": f"I should call {tool} for this request. Next: caller."})
            conv.append({"from": "caller", "value": f"Action: {tool}\nAction Input: {args}"})
            conv.append({"from": "observation", "value": by_call.get((tool, args), "")})
        judged = items[index].get("final_response_correctness") == "Yes"
        conv.append({"from": "assistant", "value": "I have what the user asked for. Next: conclusion."})
        if final is not None and judged:
            conv.append({"from": "conclusion", "value": final})
        records.append(
            {
                "id": task.id,
                "tools": _tools(apis[task.api]),
                "instruction": task.instruction,
                "conversations": conv,
                "gold_calls": [{"tool": tool, "action_input": args} for tool, args in gold],
                "recordings": calls,
            }
        )
    return records
