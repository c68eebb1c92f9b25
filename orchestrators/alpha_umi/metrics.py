"""The alpha-UMi static metrics: Plan ACC, Act. EM, Hallu., Arg. F1, R-L, exactly as the original computes them.

Definitions follow ``GLPFT/inference_utils/toolbench/evaluate-multi_agent.py`` (X-PLUG/Multi-LLM-Agent,
commit f9eeef7), quirks included; ``docs/alpha_umi.md`` lists them. The ``fixed`` variants change only
what the docs call bugs. ROUGE-L is re-implemented here as the ``rouge`` package (1.0.1, pltrdy)
computes ``rouge-l`` ``f`` with its defaults (summary-level union LCS over word *sets*, sentences split
on ``.``), so no extra dependency is needed at run time; a test checks it against the package.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, NamedTuple

from protocols.alpha_umi import Plan, StaticMetrics


class Parsed(NamedTuple):
    """One reference or prediction as the evaluator reads it."""

    plan: Plan
    action: str | None
    action_input: str | None
    answer: str | None


def _call_fields(text: str) -> tuple[str, str]:
    action_input = "{}"
    if "Action Input:" in text:
        action_input = text[text.rindex("Action Input:") + len("Action Input:") :].strip()
    action = "none"
    if "Action:" in text:
        action = text[text.rindex("Action:") + len("Action:") :].strip()
        if "Action Input:" in action:
            action = action[: action.index("Action Input:")].strip()
    return action, action_input


def parse_output(text: str) -> Parsed:
    """The multi-agent evaluator's ``parse_output``: give up, else conclusion, else the call after ``</s>``."""
    if "Next: give up" in text:
        return Parsed("give up", None, None, None)
    if "Next: conclusion" in text:
        answer = text[text.rindex("conclusion: ") + len("conclusion: ") :] if "conclusion:" in text else text
        return Parsed("finish", None, None, answer.replace("</s>", ""))
    parts = text.split("</s>")
    # The original indexes [1] unconditionally (and crashes without a separator); ours always has one.
    action, action_input = _call_fields(parts[1] if len(parts) > 1 else parts[0])
    return Parsed("call", action, action_input, None)


def parse_backbone_output(text: str) -> Parsed:
    """The single-LLM evaluator's ``parse_output`` (``evaluate-backbone.py``)."""
    if "conclusion: give up" in text:
        return Parsed("give up", None, None, None)
    if "conclusion: " in text:
        return Parsed("finish", None, None, text[text.rindex("conclusion: ") + len("conclusion: ") :])
    action, action_input = _call_fields(text)
    return Parsed("call", action, action_input, None)


# --- ROUGE-L (the rouge package's rouge-l f) -----------------------------------


def _sentences(text: str) -> list[str]:
    return [" ".join(s.split()) for s in text.split(".") if len(s) > 0]


def _words(sentences: Sequence[str]) -> list[str]:
    return [w for s in sentences for w in s.split(" ")]


def _lcs_words(x: list[str], y: list[str]) -> set[str]:
    """The words of the LCS of x and y, traced back exactly as ``rouge_score._recon_lcs`` does."""
    n, m = len(x), len(y)
    table = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(1, n + 1):
        xi, row, prev = x[i - 1], table[i], table[i - 1]
        for j in range(1, m + 1):
            row[j] = prev[j - 1] + 1 if xi == y[j - 1] else max(prev[j], row[j - 1])
    out: set[str] = set()
    i, j = n, m
    while i > 0 and j > 0:
        if x[i - 1] == y[j - 1]:
            out.add(x[i - 1])
            i, j = i - 1, j - 1
        elif table[i - 1][j] > table[i][j - 1]:
            i -= 1
        else:
            j -= 1
    return out


def rouge_l_f(hypothesis: str, reference: str) -> float:
    """``Rouge().get_scores(hyp, ref)[0]["rouge-l"]["f"]``; 0.0 where the package raises on an empty side."""
    hyp, ref = _sentences(hypothesis), _sentences(reference)
    if not hyp or not ref:
        return 0.0
    m = len(set(_words(ref)))
    n = len(set(_words(hyp)))
    union: set[str] = set()
    for ref_s in ref:
        ref_words = ref_s.split(" ")
        for hyp_s in hyp:
            union |= _lcs_words(ref_words, hyp_s.split(" "))
    r, p = len(union) / m, len(union) / n
    return 2.0 * ((p * r) / (p + r + 1e-8))


# --- per-step scores -------------------------------------------------------------


def arg_f1(ref_input: str, cand_input: str) -> tuple[float | None, str | None]:
    """The original per-call Arg. F1 when the action matched: (score, bucket).

    ``score`` is None when the gold arguments are not JSON (the original silently drops the
    sample); ``bucket`` is ``easy`` (gold ``{}``), ``hard`` or None (not counted in either). A
    key with another value earns half; values compare with Python ``==`` (``"1" != 1``).
    """
    try:
        ref = json.loads(ref_input)
    except ValueError:
        return None, None
    try:
        cand = json.loads(cand_input)
        if ref == {}:
            return (1.0, "easy") if cand == {} else (0.0, "easy")
        full = half = 0
        for k, v in ref.items():
            if k in cand.keys():  # noqa: SIM118 (.keys() raises on a list, as in the original)
                if cand[k] == v:
                    full += 1
                else:
                    half += 1
        recall = (0.5 * half + full) / (len(ref) + 1e-30)
        precision = (0.5 * half + full) / (len(cand) + 1e-30)
        return (2 * recall * precision) / (recall + precision), "hard"
    except Exception:  # as the original's bare except: bad JSON, non-dict, no overlap (0/0)
        return 0.0, ("easy" if ref == {} else "hard")


class StepScore(NamedTuple):
    """What one step contributes to each metric (None: not part of that metric's population)."""

    plan_correct: bool
    hallucinated: bool
    predicted_call: bool
    action_correct: bool | None
    arg_f1: float | None
    arg_bucket: str | None
    arg_f1_fixed: float | None
    rouge_l: float | None


def score_step(ref: Parsed, pred: Parsed, tool_names: Sequence[str]) -> StepScore:
    """One step's contributions, with the original's conventions (``none`` / ``{}`` for missing fields)."""
    hallucinated = pred.action is not None and pred.action != "none" and pred.action not in tool_names
    predicted_call = pred.plan == "call" and pred.action is not None and pred.action != "none"
    action_correct: bool | None = None
    f1: float | None = None
    bucket: str | None = None
    f1_fixed: float | None = None
    rouge: float | None = None
    if ref.plan == "finish":
        rouge = rouge_l_f("none" if pred.answer is None else pred.answer, ref.answer or "")
    elif ref.plan == "call":
        p_action = "none" if pred.action is None else pred.action
        p_input = "{}" if pred.action_input is None else pred.action_input
        action_correct = p_action == ref.action
        if not action_correct:
            f1, bucket, f1_fixed = 0.0, "both", 0.0
        else:
            f1, bucket = arg_f1(ref.action_input or "", p_input)
            f1_fixed = f1 if f1 is not None else float(p_input.strip() == (ref.action_input or "").strip())
    return StepScore(ref.plan == pred.plan, hallucinated, predicted_call, action_correct, f1, bucket, f1_fixed, rouge)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def aggregate(scores: Sequence[StepScore], fixed: bool = False) -> StaticMetrics:
    """The five metrics over a set of steps; ``fixed`` uses the corrected Hallu. and Arg. F1."""
    n = len(scores)
    plan = _mean([float(s.plan_correct) for s in scores])
    calls = [s for s in scores if s.action_correct is not None]
    act = _mean([float(bool(s.action_correct)) for s in calls])
    rouge_values = [s.rouge_l for s in scores if s.rouge_l is not None]
    if fixed:
        predicted = [s for s in scores if s.predicted_call]
        hallu = _mean([float(s.hallucinated) for s in predicted])
        f1s = [s.arg_f1_fixed for s in calls if s.arg_f1_fixed is not None]
        return StaticMetrics(
            plan_acc=plan,
            act_em=act,
            hallu=hallu,
            arg_f1=_mean(f1s),
            rouge_l=_mean(rouge_values),
            n_steps=n,
            n_call_steps=len(calls),
            n_conclusion_steps=len(rouge_values),
            n_args_scored=len(f1s),
        )
    f1s = [s.arg_f1 for s in calls if s.arg_f1 is not None]
    easy = [s.arg_f1 for s in calls if s.arg_f1 is not None and s.arg_bucket in ("easy", "both")]
    hard = [s.arg_f1 for s in calls if s.arg_f1 is not None and s.arg_bucket in ("hard", "both")]
    # The original adds 1e-30 to each mean (and divides by zero on an empty list; here: 0).
    return StaticMetrics(
        plan_acc=plan,
        act_em=act,
        hallu=sum(s.hallucinated for s in scores) / n if n else 0.0,
        arg_f1=_mean(f1s) + 1e-30,
        rouge_l=_mean(rouge_values),
        easy_f1=_mean(easy) + 1e-30,
        hard_f1=_mean(hard) + 1e-30,
        n_steps=n,
        n_call_steps=len(calls),
        n_conclusion_steps=len(rouge_values),
        n_args_scored=len(f1s),
    )


def metrics_table(rows: Sequence[tuple[str, StaticMetrics]]) -> str:
    """A markdown table of metric rows, in percent as the paper prints them."""
    lines = ["| predictor | Plan ACC | Act. EM | Hallu. | Arg. F1 | R-L | steps |", "|---|---|---|---|---|---|---|"]
    for label, m in rows:
        cells = [m.plan_acc, m.act_em, m.hallu, m.arg_f1, m.rouge_l]
        lines.append(f"| {label} | " + " | ".join(f"{100 * c:.2f}" for c in cells) + f" | {m.n_steps} |")
    return "\n".join(lines)


def as_dict(parsed: Parsed) -> dict[str, Any]:
    return parsed._asdict()
