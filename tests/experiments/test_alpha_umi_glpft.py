"""GLPFT data: counts on the shipped trajectories, exact records, the original's exclusions, and its bugs fixed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from experiments.cli.alpha_umi import main
from experiments.studies.alpha_umi.glpft import FILES, backbone_samples, caller_samples, planner_samples
from orchestrators.alpha_umi.prompts import TOOLBENCH_PLANNER, tool_doc, tool_names

DATA = Path(__file__).resolve().parents[2] / "datasets" / "data" / "alpha_umi_toolbench" / "out_of_domain.json"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, object]]]:
    out = tmp_path_factory.mktemp("glpft")
    assert main(["glpft", str(out)]) == 0
    return {role: [json.loads(x) for x in (out / name).read_text().splitlines()] for role, name in FILES.items()}


def test_counts_follow_the_trajectories(built: dict[str, list[dict[str, object]]]) -> None:
    records = json.loads(DATA.read_text())
    conclusions = [t for r in records for t in r["conversations"] if t["from"] == "conclusion"]
    assert len(built["backbone"]) == len(built["planner"]) == 1547  # one per decided planner turn
    assert len(built["caller"]) == 1146
    assert len(built["summarizer"]) == sum(t["value"] != "none" for t in conclusions) == 293


def test_first_planner_and_caller_records_are_exact(built: dict[str, list[dict[str, object]]]) -> None:
    record = json.loads(DATA.read_text())[0]
    conv = record["conversations"]
    head = TOOLBENCH_PLANNER.replace("{doc}", tool_doc(record["tools"])).replace(
        "{tool_names}", tool_names(record["tools"])
    )
    first = built["planner"][0]
    assert first["prompt"] == head.replace("{history}", f"user: {conv[0]['value']}</s>") + " assistant: "
    assert first["completion"] == conv[1]["value"]
    assert first["messages"] == [
        {"role": "user", "content": head.replace("{history}", f"user: {conv[0]['value']}</s>")},
        {"role": "assistant", "content": conv[1]["value"]},
    ]
    call = built["caller"][0]
    assert call["completion"] == conv[2]["value"]
    prompt = str(call["prompt"])
    assert f"</s>assistant: {conv[1]['value']}</s>\nThe thought of this step is:\n{conv[1]['value']}\n" in prompt
    assert prompt.endswith("Action Input: the api call request. caller: ")
    backbone = built["backbone"][0]
    assert backbone["completion"] == conv[1]["value"].replace("Next: caller.", "").strip() + "\n" + conv[2]["value"]


def _record() -> dict[str, object]:
    return {
        "tools": [{"Name": "t", "function": "f", "input": {}}],
        "instruction": "q",
        "conversations": [
            {"from": "user", "value": "q"},
            {"from": "assistant", "value": "try Next: caller."},
            {"from": "caller", "value": "Action: invalid_hallucination_function_name\nAction Input: {}"},
            {"from": "observation", "value": "no such function"},
            {"from": "assistant", "value": "again Next: caller."},
            {"from": "caller", "value": "Action: t\nAction Input: {}"},
            {"from": "observation", "value": "OBS-2"},
            {"from": "assistant", "value": "stuck Next: give up."},
        ],
    }


def test_hallucinated_calls_are_excluded_but_stay_in_the_history() -> None:
    planner = planner_samples("x", _record())
    assert [p["completion"] for p in planner] == ["again Next: caller.", "stuck Next: give up."]
    callers = caller_samples("x", _record())
    assert len(callers) == 1
    assert "caller: Action: invalid_hallucination_function_name" in str(callers[0]["prompt"])


def test_the_give_up_sample_sees_the_current_history_not_the_previous_input() -> None:
    give_up = backbone_samples("x", _record())[-1]
    assert give_up["completion"] == "stuck\nconclusion: give up."
    assert "observation: OBS-2" in str(give_up["prompt"])  # the original reused the step before's input here


def test_bad_input_file_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"tools": [{"function": "no name"}], "conversations": []}]))
    assert main(["glpft", str(tmp_path / "out"), "--input", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "record 0" in err
