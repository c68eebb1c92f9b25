"""The alpha-UMi prompts are the original ones, and the role parsers read outputs as the original does."""

from __future__ import annotations

import hashlib

import pytest

from orchestrators.alpha_umi import prompts as P

# sha256 prefixes of the prompt_dict entries of X-PLUG/Multi-LLM-Agent GLPFT/utils/prompt_lib.py (commit f9eeef7),
# taken from the original file: a changed character in a template fails here.
ORIGINAL = {
    "TOOLBENCH_BACKBONE": "262d0f0a0f3a4a38",
    "TOOLBENCH_PLANNER": "c58e4488c3966bf1",
    "TOOLBENCH_CALLER": "bebdd424180e8518",
    "TOOLBENCH_SUMMARIZER": "6c2f7ca4b915bf37",
    "TOOLALPACA_BACKBONE": "1af99fa0e3b75302",
    "TOOLALPACA_PLANNER": "b10bca793a866b09",
    "DIVERSITY_PROMPT": "60060deea4b0d4de",  # ToolBench-multiLLM/toolbench/inference/Prompts/Tree_search_prompts.py
}


@pytest.mark.parametrize(("name", "digest"), sorted(ORIGINAL.items()))
def test_templates_are_verbatim(name: str, digest: str) -> None:
    assert hashlib.sha256(getattr(P, name).encode()).hexdigest()[:16] == digest


def test_render_fills_with_replace_so_braces_in_tool_docs_survive() -> None:
    tools = [{"Name": "t_for_x", "function": "f {weird}", "input": {"q": "string, "}}]
    text = P.render(P.TOOLBENCH_CALLER, tools, "user: hi</s>", "call it Next: caller.")
    assert '{"Name": "t_for_x", "function": "f {weird}", "input": {"q": "string, "}}\n' in text
    assert "should be exactly in [t_for_x]" in text and "call it Next: caller." in text


@pytest.mark.parametrize(
    ("text", "decision", "cut"),
    [
        ("ok Next: caller. extra", "caller", "ok Next: caller."),
        ("Next: conclusion. Next: caller.", "conclusion", "Next: conclusion."),
        ("x Next: caller. then Next: give up.", "give up", "x Next: caller. then Next: give up."),
        ("no token here", None, "no token here"),
        ("Next: caller", None, "Next: caller"),  # without the dot the original sees no token
    ],
)
def test_planner_parse_follows_the_original_order(text: str, decision: str | None, cut: str) -> None:
    assert P.parse_planner(text) == (cut, decision)


@pytest.mark.parametrize(
    ("text", "action", "action_input"),
    [
        ('Action: a\nAction Input: {"x": 1}', "a", '{"x": 1}'),
        ("Action: a", "a", "{}"),
        ('Action Input: {"x": 1}', "none", '{"x": 1}'),
        ("Action: a\nAction: b\nAction Input: {}", "b", "{}"),
    ],
)
def test_caller_parse_takes_the_last_fields(text: str, action: str, action_input: str) -> None:
    assert P.parse_caller(text) == (action, action_input)


@pytest.mark.parametrize(("raw", "clean"), [(": hi", "hi"), ("", "none"), (" . ", "none"), (",", "none"), ("x", "x")])
def test_clean_output_is_the_originals(raw: str, clean: str) -> None:
    assert P.clean_output(raw) == clean
