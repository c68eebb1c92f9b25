r"""Which collaborator role a plain OpenAI request plays, inferred from its conversation text.

Third-party multi-agent code sends no slmsim-specific field, so the server reads the role
from what the prompt shows, in this order (the first rule that applies wins):

1. **Forced**: a ``slmsim_meta`` object in the body (a full ``RequestMeta``) or an
   ``x-slmsim-role`` header (``solver``, ``aggregator``, ``debater``, ``verifier``, ``judge`` (= aggregator),
   ``agent``) is taken as given; the candidates are still parsed from the text unless
   ``slmsim_meta`` lists them.
2. **solver** with a structured answer: ``tool_choice`` names a tool whose schema has an
   answer-like field (``answer``, ``final_answer``, ``result``, ...), as LangChain's
   ``with_structured_output(method="function_calling")`` sends; the answer fills that call.
   **agent** (function calling): the request has ``tools``, or its history holds assistant
   ``tool_calls`` / ``tool`` messages. ``tools_called`` are the names called so far,
   ``candidates`` the answers found in the tool results (observations), ``step`` the number
   of tool-calling turns.
3. **agent** (ReAct text): the prompt asks for ``Action:`` / ``Action Input:`` lines; the
   tools are the names in "should be one of [a, b]" (or listed under "You have access to the
   following tools:"), ``tools_called`` the tools of the ``Action:`` / ``Action Input:`` /
   ``Observation:`` steps already in the scratchpad and ``candidates`` the answers in their
   observations.
4. **verifier**: the last user turn asks to verify / check / judge whether a solution or
   answer is correct; ``target`` is the "proposed/final answer: X" line, else the last
   answer written in that turn.
5. **debater**: the last user turn shows other agents' solutions ("One agent solution:",
   "other agents", "Agent 2:"); ``candidates`` are the answers of those blocks and the
   model's own previous answer (its last assistant turn) is ``own_answer``; the round is
   one more than the assistant turns so far (as ``orchestrators/debate.py`` counts it).
6. **aggregator**: a system or user turn shows a set of responses to synthesise ("responses
   from models", "synthesize these responses", "candidate answers", a numbered list of
   responses); ``candidates`` are the answers of the numbered blocks.
7. otherwise **solver**.

An answer is extracted from a block with the grader of the problem's format (the last
``\boxed{}``; ``#### n`` or the last number for GSM8K; ``Answer: X`` for letters).
"""

from __future__ import annotations

import re
from typing import Any

from experiments.serve.wire import BadRequest, WireRequest, clip
from protocols.messages import Problem, RequestMeta, Role

FORCEABLE: frozenset[str] = frozenset({"solver", "aggregator", "debater", "verifier", "judge", "agent"})

_VERIFY = re.compile(
    r"\b(?:verify|verif(?:y|ies) whether|is (?:the|this) (?:proposed |following |above |given )?"
    r"(?:solution|answer) (?:correct|right)|check (?:whether|if)\b.{0,80}\b(?:correct|right)|"
    r"judge whether|evaluate whether\b.{0,80}\bcorrect|verdict)",
    re.IGNORECASE | re.DOTALL,
)
_DEBATE = re.compile(r"one agent solution|other agents?\b|\bagent \d+\s*(?:'s )?(?:solution|answer|response)?:", re.I)
_AGGREGATE = re.compile(
    r"responses from (?:various |several |different )?(?:open-source |other )?models|synthesi[sz]e th(?:ese|e) "
    r"responses|set of responses|candidate (?:answers|responses|solutions)|previous (?:responses|answers)",
    re.IGNORECASE,
)
_DEBATE_BLOCK = re.compile(r"one agent solution:|(?:^|\n)\s*agent \d+\s*(?:'s )?[a-z]*\s*:", re.IGNORECASE)
_NUMBERED_BLOCK = re.compile(
    r"(?:^|\n)\s*(?:\d+[.)]\s|\[?(?:response|model|answer|solution|candidate|proposal)\s*#?\s*\d+\]?\s*[:.)\]]?)",
    re.IGNORECASE,
)
_PROPOSED = re.compile(r"(?:proposed|candidate|final) answer\s*(?:is)?\s*[:=]\s*(.+)", re.IGNORECASE)
_REACT = re.compile(r"^\s*Action Input\s*:", re.MULTILINE)
_ONE_OF = re.compile(r"should be one of \[([^\]]*)\]")
_TOOL_LIST = re.compile(r"have access to the following tools:?\s*\n(.*?)(?:\n\s*\n|$)", re.IGNORECASE | re.DOTALL)
_STEP = re.compile(
    r"^\s*Action\s*:\s*([A-Za-z0-9_.\-]+)\s*\n\s*Action Input\s*:.*?\n\s*Observation\s*:\s*(.*?)"
    r"(?=\n\s*(?:Thought|Action|Final Answer)\s*:|\Z)",
    re.MULTILINE | re.DOTALL,
)
"""One scratchpad step: the tool called and the observation it returned."""


PLACEHOLDERS = frozenset({"", "answer", "your answer", "final answer", "<answer>", "...", "number", "your_answer"})
"""What an instruction puts in a box ("in the form \\boxed{answer}"): not anyone's answer."""
_PLACEHOLDER_BOX = re.compile(r"\\boxed\{\s*(?:<?answer>?|your[ _]answer|final answer|\.\.\.|number)?\s*\}", re.I)
_FENCE = re.compile(r"```(.*?)```", re.DOTALL)


def extract_answer(text: str, answer_format: str) -> str | None:
    """The final answer written in ``text``, with the grader of ``answer_format``."""
    from datasets.grading import gsm8k, letter, math

    text = _PLACEHOLDER_BOX.sub("", text)  # an instruction's box is not an answer
    match answer_format:
        case "gsm8k":
            found = gsm8k.extract(text, "flexible")
        case "letter":
            found = letter.extract(text)
        case _:
            found = math.extract_final_answer(text)
    return None if found is None or found.strip().lower() in PLACEHOLDERS else found


def observation_answer(text: str, answer_format: str) -> str | None:
    """The answer a tool observation offers: a stated final answer, or a short bare result ("12").

    Longer free text ("No results found for 'Janet has 3 ducks'") offers none: its numbers
    are not an answer.
    """
    from datasets.grading import gsm8k

    stated = gsm8k.extract(text, "strict") if answer_format == "gsm8k" else None
    if stated is not None or "\\boxed" in text:
        return stated or extract_answer(text, answer_format)
    short = text.strip()
    return extract_answer(short, answer_format) if len(short) <= 30 and len(short.split()) <= 4 else None


def _blocks(text: str, marker: re.Pattern[str]) -> list[str]:
    """The text after each marker up to the next one (the text before the first is not a block)."""
    found = list(marker.finditer(text))
    if not found:
        return []
    ends = [m.start() for m in found[1:]] + [len(text)]
    return [text[m.end() : end] for m, end in zip(found, ends, strict=True)]


def _answers(blocks: list[str], answer_format: str) -> tuple[str | None, ...]:
    """The answer of each block; a block holding a fenced solution is read inside the fence only."""
    fenced = [(_FENCE.findall(b) or [b])[0] for b in blocks]
    return tuple(extract_answer(b, answer_format) for b in fenced)


def _last(messages: tuple[Any, ...], role: str) -> str:
    return next((m.content for m in reversed(messages) if m.role == role), "")


def _react_tools(text: str) -> tuple[str, ...]:
    one_of = _ONE_OF.search(text)
    if one_of:
        return tuple(n.strip(" '\"") for n in one_of.group(1).split(",") if n.strip(" '\""))
    listed = _TOOL_LIST.search(text)
    if listed:
        return tuple(m.group(1) for m in re.finditer(r"^\s*([A-Za-z0-9_.\-]+)\s*[:(]", listed.group(1), re.M))
    return ()


def structured_output(request: WireRequest) -> bool:
    """A named tool choice whose schema has an answer field: the client wants the answer in that form."""
    choice = request.tool_choice
    if not isinstance(choice, dict):  # the common case, before the import (a lookup per call)
        return False
    from experiments.serve.features import is_answer_schema

    return any(t["function"]["name"] == choice["name"] and is_answer_schema(t) for t in request.tools)


def infer_meta(request: WireRequest, problem: Problem | None, forced_role: str | None) -> RequestMeta:
    """The ``RequestMeta`` of a request (see the module doc for the rules)."""
    base: dict[str, Any] = {}
    if request.slmsim_meta is not None:
        from pydantic import ValidationError

        try:
            given = RequestMeta.model_validate(request.slmsim_meta)
        except ValidationError as exc:
            raise BadRequest(f"invalid slmsim_meta: {exc.errors()[0]['msg']}", param="slmsim_meta") from None
        if given.problem is None and problem is not None:
            given = given.model_copy(update={"problem": problem, "problem_id": given.problem_id or problem.id})
        return given
    if forced_role is not None and forced_role not in FORCEABLE:
        raise BadRequest(f"x-slmsim-role {clip(forced_role)} is not one of {sorted(FORCEABLE)}", param="x-slmsim-role")
    if problem is not None:
        base.update(problem=problem, problem_id=problem.id)
    fmt = problem.answer_format if problem is not None else "boxed"
    role, fields = _infer(request, fmt, forced_role)
    return RequestMeta(role=role, **base, **fields)


def _infer(request: WireRequest, fmt: str, forced: str | None) -> tuple[Role, dict[str, Any]]:
    messages = request.messages
    text = request.text
    last_user = _last(messages, "user") if messages else text
    tool_turns = [m for m in messages if m.tool_calls]
    if structured_output(request):
        return "solver", {}  # with_structured_output(method="function_calling"): the "tool" is the answer form
    if forced in (None, "agent") and (request.tools or tool_turns or any(m.role == "tool" for m in messages)):
        called = tuple(c["name"] for m in tool_turns for c in m.tool_calls)
        observations = [m.content for m in messages if m.role == "tool"]
        return "agent", {
            "tools": request.tool_names or tuple(dict.fromkeys(called)),
            "tools_called": called,
            "candidates": tuple(observation_answer(o, fmt) for o in observations),
            "step": len(tool_turns),
        }
    if forced in (None, "agent") and _REACT.search(text):
        tools = _react_tools(text)
        steps = [(a, o) for a, o in _STEP.findall(text) if a in tools]  # the format's own example names no tool
        return "agent", {
            "tools": tools,
            "tools_called": tuple(a for a, _ in steps),
            "candidates": tuple(observation_answer(o, fmt) for _, o in steps),
            "step": len(steps),
        }
    if forced in (None, "verifier") and (forced or _VERIFY.search(last_user)):
        proposed = _PROPOSED.findall(last_user)
        target = proposed[-1].strip().rstrip(".") if proposed else extract_answer(last_user, fmt)
        if proposed and fmt != "letter":
            target = extract_answer(proposed[-1], fmt) or target
        return "verifier", {"target": target}
    if forced in (None, "debater") and (forced or _DEBATE.search(last_user)):
        candidates = _answers(_blocks(last_user, _DEBATE_BLOCK), fmt)
        own = extract_answer(_last(messages, "assistant"), fmt) if messages else None
        # The round, as slmsim's debate orchestrator counts it: one more than the agent's own turns so far.
        extra: dict[str, Any] = {"round": 1 + sum(m.role == "assistant" for m in messages)}
        if own is not None:
            extra["own_answer"] = own
        return "debater", {"candidates": ((own,) if own is not None else ()) + candidates, "extra": extra}
    shown = [m.content for m in messages if m.role in ("system", "user")] or [text]
    for part in shown:
        # "judge" is accepted as another name of the aggregator (one role picking among answers).
        if forced in (None, "aggregator", "judge") and (forced or _AGGREGATE.search(part)):
            blocks = _blocks(part, _NUMBERED_BLOCK)
            return "aggregator", {"candidates": _answers(blocks, fmt)}
    if forced in ("aggregator", "judge"):
        return "aggregator", {"candidates": ()}
    return "solver", {}
