"""A port of the original alpha-UMi static evaluator, to check ours against (test code only).

Re-written by us, line by line after ``GLPFT/inference_utils/toolbench/evaluate-multi_agent.py``
of X-PLUG/Multi-LLM-Agent (commit f9eeef7): same parse, same lists, same bare excepts, same
``+ 1e-30``, and the ``rouge`` package for R-L, as the original. It takes the list of
``{"reference", "predictions", "tools"}`` dicts the original reads from ``predictions.json``
and returns its metric dict. Only the file I/O and argparse are left out.
"""

from __future__ import annotations

import json
from typing import Any

from rouge import Rouge


def evaluate_rougel(cand_list: list[str], ref_list: list[str]) -> float:
    if len(ref_list) == 0:
        return 0
    rouge = Rouge()
    rouge_score = rouge.get_scores(hyps=cand_list, refs=ref_list, avg=True)
    return float(rouge_score["rouge-l"]["f"])


def evaluate_action_em(cand_list: list[Any], ref_list: list[Any]) -> float:
    if len(ref_list) == 0:
        return 0
    em = 0
    for cand, ref in zip(cand_list, ref_list, strict=False):
        em += 1 if cand == ref else 0
    return em / len(cand_list)


def evaluate_action_input_f1(
    action_pred: list[str], action_ref: list[str], cand_list: list[str], ref_list: list[str]
) -> tuple[float, float, float]:
    easy_f1: list[float] = []
    hard_f1: list[float] = []
    f1: list[float] = []
    for i in range(len(action_pred)):
        ref_action = action_ref[i]
        pred_action = action_pred[i]
        ref_input = ref_list[i]
        cand_input = cand_list[i]
        if ref_action != pred_action:
            easy_f1.append(0)
            hard_f1.append(0)
            f1.append(0)
        else:
            try:
                ref_input_json = json.loads(ref_input)
                try:
                    cand_input_json = json.loads(cand_input)
                    half_match = 0
                    full_match = 0
                    if ref_input_json == {}:
                        if cand_input_json == {}:
                            easy_f1.append(1)
                            f1.append(1)
                        else:
                            easy_f1.append(0)
                            f1.append(0)
                    else:
                        for k, v in ref_input_json.items():
                            if k in cand_input_json.keys():  # noqa: SIM118
                                if cand_input_json[k] == v:
                                    full_match += 1
                                else:
                                    half_match += 1
                        recall = (0.5 * half_match + full_match) / (len(ref_input_json) + 1e-30)
                        precision = (0.5 * half_match + full_match) / (len(cand_input_json) + 1e-30)
                        hard_f1.append((2 * recall * precision) / (recall + precision))
                        f1.append((2 * recall * precision) / (recall + precision))
                except Exception:
                    if ref_input_json == {}:
                        easy_f1.append(0)
                    else:
                        hard_f1.append(0)
                    f1.append(0)
            except Exception:
                pass
    return sum(easy_f1) / len(easy_f1) + 1e-30, sum(hard_f1) / len(hard_f1) + 1e-30, sum(f1) / len(f1) + 1e-30


def parse_output(text: str) -> tuple[str, str | None, str | None, str | None]:
    if "Next: give up" in text:
        return "give up", None, None, None
    elif "Next: conclusion" in text:
        plan = "finish"
        if "conclusion:" in text:
            answer_idx = text.rindex("conclusion: ")
            answer = text[answer_idx + len("conclusion: ") :]
        else:
            answer = text
        answer = answer.replace("</s>", "")
        return plan, None, None, answer
    else:
        plan = "call"
        text = text.split("</s>")[1]
        if "Action Input:" in text:
            input_idx = text.rindex("Action Input:")
            action_input = text[input_idx + len("Action Input:") :].strip()
        else:
            action_input = "{}"
        if "Action:" in text:
            action_idx = text.rindex("Action:")
            action = text[action_idx + len("Action:") :].strip()
            if "Action Input:" in action:
                input_idx = action.index("Action Input:")
                action = action[:input_idx].strip()
        else:
            action = "none"
        return plan, action, action_input, None


def evaluate(data: list[dict[str, Any]]) -> dict[str, float]:
    plan_ref, plan_pred = [], []
    answer_ref, action_ref, action_input_ref = [], [], []
    answer_pred, action_pred, action_input_pred = [], [], []
    hallu_pred = 0
    for d in data:
        ref_plan, ref_action, ref_input, ref_ans = parse_output(d["reference"])
        pred_plan, pred_action, pred_input, pred_ans = parse_output(d["predictions"])
        if pred_action is not None and pred_action != "none" and pred_action not in [t["Name"] for t in d["tools"]]:
            hallu_pred += 1
        plan_ref.append(ref_plan)
        plan_pred.append(pred_plan)
        if ref_plan == "give up":
            pass
        elif ref_plan == "finish":
            answer_ref.append(ref_ans)
            answer_pred.append("none" if pred_ans is None else pred_ans)
        else:
            action_ref.append(ref_action)
            action_input_ref.append(ref_input)
            action_pred.append("none" if pred_action is None else pred_action)
            action_input_pred.append("{}" if pred_input is None else pred_input)
    metric: dict[str, float] = {}
    metric["rouge"] = evaluate_rougel(answer_pred, answer_ref)  # type: ignore[arg-type]
    metric["plan_em"] = evaluate_action_em(plan_ref, plan_pred)
    metric["action_em"] = evaluate_action_em(action_ref, action_pred)
    easy_f1, hard_f1, f1 = evaluate_action_input_f1(action_pred, action_ref, action_input_pred, action_input_ref)  # type: ignore[arg-type]
    metric["easy_f1"] = easy_f1
    metric["hard_f1"] = hard_f1
    metric["f1"] = f1
    metric["hallu_rate"] = hallu_pred / len(data)
    return metric
