"""GLPFT fine-tuning data: stage 1 (one backbone on every step) and stage 2 (planner, caller, summarizer).

Follows the original preprocessing (X-PLUG/Multi-LLM-Agent ``GLPFT/process_data/toolbench/
prepro_{backbone,planner,caller,summarizer}.py``, commit f9eeef7) on trajectories in the
alpha-UMi record format (``raw_data_stage_2.json`` / the static test files): the same
prompts, history strings, targets and exclusions (planner turns whose call is an
``invalid_hallucination_function_name``, such calls themselves, ``none`` conclusions).
Its bugs are not reproduced (``docs/alpha_umi.md``):

- stage 1 of the original keeps only ``data[:20]``: every trajectory is used here;
- its backbone give-up branch reuses the ``input`` of the previous step: the current history is used;
- its caller history skips a hallucinated call but keeps that call's observation: the call stays in the history;
- a trajectory ending on a planner turn without a decision raised IndexError: that turn is skipped.

Each output line: ``{"id", "task", "role", "prompt", "completion", "messages"}``; ``prompt`` +
``completion`` is the original's ``input`` + ``target`` (completion-style training), and
``messages`` is the same pair as a chat (the prompt without its trailing role cue).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from datasets.records import read_json
from experiments.studies.alpha_umi.rundir import DEFAULT_TOOLBENCH
from orchestrators.alpha_umi.prompts import (
    CALLER_CUE,
    PLANNER_CUE,
    SUMMARIZER_CUE,
    TOOLBENCH_BACKBONE,
    TOOLBENCH_CALLER,
    TOOLBENCH_PLANNER,
    TOOLBENCH_SUMMARIZER,
    tool_doc,
    tool_names,
    turn_text,
)
from orchestrators.alpha_umi.static import load_records

HALLUCINATED = "invalid_hallucination_function_name"
FILES = {"backbone": "stage1_backbone.jsonl", "planner": "stage2_planner.jsonl"}
FILES |= {"caller": "stage2_caller.jsonl", "summarizer": "stage2_summarizer.jsonl"}


def _template(template: str, tools: list[dict[str, Any]]) -> str:
    return template.replace("{doc}", tool_doc(tools)).replace("{tool_names}", tool_names(tools))


def _sample(task: str, role: str, k: int, prompt: str, cue: str, target: str) -> dict[str, Any]:
    return {
        "id": f"{task}#{role}{k}",
        "task": task,
        "role": role,
        "prompt": prompt + cue,
        "completion": target,
        "messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": target}],
    }


def backbone_samples(task: str, record: dict[str, Any]) -> list[dict[str, Any]]:
    """Stage 1: thought + call, thought + ``conclusion: ...`` or ``conclusion: give up.`` per planner turn."""
    query = _template(TOOLBENCH_BACKBONE, record["tools"])
    conv = record["conversations"]
    history, out = "", list[dict[str, Any]]()
    for i, turn in enumerate(conv):
        value = turn["value"]
        if turn["from"] == "assistant":
            nxt = conv[i + 1]["from"] if i + 1 < len(conv) else None
            if "Next: give up." in value:
                span = value.replace("Next: give up.", "").strip() + "\nconclusion: give up."
            elif nxt == "caller":
                span = value.replace("Next: caller.", "").strip() + "\n" + conv[i + 1]["value"]
            elif nxt == "conclusion":
                span = value.replace("Next: conclusion.", "").strip() + "\nconclusion: " + conv[i + 1]["value"]
            else:
                span = None
            if span is not None:
                out.append(_sample(task, "backbone", len(out), query.replace("{history}", history), PLANNER_CUE, span))
            history += turn_text("assistant", span if span is not None else value)
        elif turn["from"] in ("user", "observation"):
            history += turn_text(turn["from"], value)
    return out


Turn = list[dict[str, Any]]


def _role_samples(
    task: str, record: dict[str, Any], role: str, template: str, cue: str, wanted: Callable[[Turn, int], bool]
) -> list[dict[str, Any]]:
    """Stage 2: walk the conversation once, the history growing turn by turn; each ``wanted`` turn is a sample."""
    query = _template(template, record["tools"])
    conv = record["conversations"]
    history, out = "", list[dict[str, Any]]()
    for i, turn in enumerate(conv):
        value = turn["value"]
        if wanted(conv, i):
            prompt = query.replace("{history}", history)
            if role == "caller":
                # The original fills {history} before {thought}; kept, so a literal "{thought}" in a history stays.
                prompt = prompt.replace("{thought}", conv[i - 1]["value"])
            out.append(_sample(task, role, len(out), prompt, cue, value))
        history += turn_text(turn["from"], value)
    return out


def _planner_turn(conv: Turn, i: int) -> bool:
    if conv[i]["from"] != "assistant":
        return False
    nxt = conv[i + 1] if i + 1 < len(conv) else None
    decided = "Next: give up." in conv[i]["value"] or (nxt is not None and nxt["from"] in ("conclusion", "caller"))
    return decided and not (nxt is not None and nxt["from"] == "caller" and HALLUCINATED in nxt["value"])


def planner_samples(task: str, record: dict[str, Any]) -> list[dict[str, Any]]:
    """Stage 2 planner: every planner turn followed by a call, a conclusion, or saying give up."""
    return _role_samples(task, record, "planner", TOOLBENCH_PLANNER, PLANNER_CUE, _planner_turn)


def caller_samples(task: str, record: dict[str, Any]) -> list[dict[str, Any]]:
    """Stage 2 caller: every call that names a real tool, given the history and the planner's thought."""

    def wanted(conv: Turn, i: int) -> bool:
        return conv[i]["from"] == "caller" and HALLUCINATED not in conv[i]["value"] and i > 0

    return _role_samples(task, record, "caller", TOOLBENCH_CALLER, CALLER_CUE, wanted)


def summarizer_samples(task: str, record: dict[str, Any]) -> list[dict[str, Any]]:
    """Stage 2 summarizer: every conclusion other than ``none``."""

    def wanted(conv: Turn, i: int) -> bool:
        return conv[i]["from"] == "conclusion" and conv[i]["value"] != "none"

    return _role_samples(task, record, "summarizer", TOOLBENCH_SUMMARIZER, SUMMARIZER_CUE, wanted)


BUILDERS = {
    "backbone": backbone_samples,
    "planner": planner_samples,
    "caller": caller_samples,
    "summarizer": summarizer_samples,
}


def build_glpft(source: Path | None, out_dir: Path) -> dict[str, int]:
    """Write the four JSONL files into ``out_dir``; returns the sample count of each."""
    path = source or DEFAULT_TOOLBENCH
    records = load_records(read_json(path), str(path))
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = {}
    for role, build in BUILDERS.items():
        target = out_dir / FILES[role]
        tmp = target.with_suffix(".tmp")
        n = 0
        with tmp.open("w", encoding="utf-8") as fh:
            for index, record in enumerate(records):
                for sample in build(f"{path.stem}/{index}", record):
                    fh.write(json.dumps(sample, ensure_ascii=False) + "\n")
                    n += 1
        tmp.replace(target)
        counts[FILES[role]] = n
    return counts


@functools.lru_cache(maxsize=8)
def shot_texts(shots: int, seed: int = 1234) -> dict[str, str]:
    """Worked examples per role for base models: complete (prompt, completion) pairs of generated calculator tasks."""
    if shots <= 0:
        return {}
    from experiments.studies.alpha_umi.calc_tasks import calculator_records

    records = calculator_records(shots, seed)
    texts: dict[str, str] = {}
    for role, build in BUILDERS.items():
        samples = [s for i, r in enumerate(records) for s in build(f"shot/{i}", r)]
        texts[role] = "".join(f"{s['prompt']}{s['completion']}</s>\n\n" for s in samples[: max(shots, 1) * 2])
    return texts
