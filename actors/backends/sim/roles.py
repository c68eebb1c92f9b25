"""Behaviour of a simulated model in each role: solver, aggregator/judge, debater, verifier, agent.

Each function is pure: it takes the world, a card, the problem's facts, the request's
``RequestMeta`` and a randomness key, and returns a ``Reply`` (text plus what the
simulator knows about it). The rules are documented in ``docs/simulator.md``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from actors.backends.sim.answers import same_answer
from actors.backends.sim.cards import Card
from actors.backends.sim.skill import unit
from actors.backends.sim.text import (
    Malformed,
    bare_answer,
    review_text,
    solver_text,
    verdict_text,
)
from actors.backends.sim.world import Facts, World
from protocols.messages import RequestMeta

MALFORMED_MODES: tuple[Malformed, ...] = ("truncated", "no_final", "unclosed_box")


@dataclass(frozen=True, slots=True)
class Reply:
    """A rendered reply and what it means: the answer it carries (None if none) and its kind."""

    text: str
    answer: str | None
    correct: bool | None
    length_factor: float = 1.0
    finish_reason: str = "stop"


def malformed_mode(rate: float, *key: object) -> Malformed | None:
    """Whether (and how) this reply is malformed, at ``rate``."""
    if unit("malformed", *key) >= rate:
        return None
    return MALFORMED_MODES[int(unit("malformed-mode", *key) * len(MALFORMED_MODES))]


def plurality(candidates: list[str]) -> tuple[str, int] | None:
    """The most frequent answer and its count (equivalent answers grouped); ties go to the earliest seen."""
    groups: list[tuple[str, int]] = []
    for c in candidates:
        for i, (rep, n) in enumerate(groups):
            if same_answer(rep, c):
                groups[i] = (rep, n + 1)
                break
        else:
            groups.append((c, 1))
    if not groups:
        return None
    best = max(n for _, n in groups)
    return next((rep, n) for rep, n in groups if n == best)


def solve(
    world: World, card: Card, facts: Facts, temperature: float, mal_rate: float, key: tuple[object, ...]
) -> Reply:
    """Solver: one attempt rendered in the problem's answer format."""
    draw = world.draw(card, facts, temperature, *key)
    mode = malformed_mode(mal_rate, *key)
    text = solver_text(facts.answer_format, draw.answer, unit("style", *key), mode)
    factor = 1.0 if draw.correct else world.cards.behaviour.wrong_longer
    if mode is not None:
        return Reply(text, None, False, factor, "length" if mode == "truncated" else "stop")
    return Reply(text, draw.answer, draw.correct, factor)


def decide(
    world: World,
    card: Card,
    facts: Facts,
    temperature: float,
    candidates: tuple[str | None, ...],
    own: str | None,
    key: tuple[object, ...],
    base: tuple[object, ...],
) -> str:
    """The skill-plus-conformity rule shared by aggregator, judge, debater and the agent's final answer.

    1. The model has its own answer: its solver answer for this sample (``base`` is the
       solver's key: the same model on the same problem believes what it would answer
       alone), or ``own``, a debater's previous answer.
       If that attempt is right, then with probability ``judge_skill`` it knows it and
       answers right whatever the candidates say.
    2. Otherwise it follows the plurality of the candidates with probability
       1 - (1 - conformity) ** m, m = how many candidates give that answer (capped at 3):
       each agreeing candidate is one more push toward the crowd.
    3. Otherwise it keeps its own answer.
    """
    draw = world.draw(card, facts, temperature, *base)
    mine = draw.answer if own is None else own
    mine_right = draw.correct if own is None else same_answer(own, facts.reference)
    if mine_right and unit("knows", *key) < card.collab.judge_skill:
        return facts.reference
    top = plurality([c for c in candidates if c is not None])
    if top is not None:
        follow = 1.0 - (1.0 - card.collab.conformity) ** min(top[1], 3)
        if unit("conform", *key) < follow:
            return top[0]
    return mine


def review(
    world: World,
    card: Card,
    facts: Facts,
    temperature: float,
    mal_rate: float,
    meta: RequestMeta,
    key: tuple[object, ...],
    base: tuple[object, ...],
) -> Reply:
    """Aggregator, judge or debater: choose a final answer among the candidates and its own."""
    own = meta.extra.get("own_answer") if meta.role == "debater" else None
    answer = decide(world, card, facts, temperature, meta.candidates, own if isinstance(own, str) else None, key, base)
    mode = malformed_mode(mal_rate, *key)
    text = review_text(facts.answer_format, answer, unit("style", *key), mode)
    if mode is not None:
        return Reply(text, None, False, 0.6)
    return Reply(text, answer, same_answer(answer, facts.reference), 0.6)


def verify(
    world: World,
    card: Card,
    facts: Facts,
    temperature: float,
    meta: RequestMeta,
    key: tuple[object, ...],
    base: tuple[object, ...],
) -> Reply:
    """Verifier: a verdict on ``meta.target``; right if it can solve the problem, else biased to accept."""
    target = meta.target
    draw = world.draw(card, facts, temperature, *base)
    target_right = same_answer(target, facts.reference)
    if draw.correct and unit("knows", *key) < card.collab.judge_skill:
        verdict = target_right
    elif target is not None and same_answer(target, draw.answer):
        verdict = True  # it reached the same answer itself, so it agrees (consistent-but-wrong included)
    else:
        verdict = target is not None and unit("accept", *key) < card.collab.accept_bias
    return Reply(verdict_text(verdict, unit("style", *key)), "CORRECT" if verdict else "INCORRECT", None, 0.5)


def act(
    world: World,
    card: Card,
    facts: Facts,
    temperature: float,
    mal_rate: float,
    meta: RequestMeta,
    question: str,
    key: tuple[object, ...],
    base: tuple[object, ...],
) -> Reply:
    """ReAct agent: call each tool not yet called (in order), then give a Final Answer."""
    remaining = [t for t in meta.tools if t not in meta.tools_called]
    step_key = (*key, "step", meta.step)
    if remaining:
        tool = remaining[0]
        if unit("malformed", *step_key) < mal_rate:
            # A typical small-model slip: the action line without its JSON input.
            return Reply(f"Thought: I should ask {tool} for help.\nAction: {tool}", None, None, 0.15)
        payload = json.dumps({"query": question})
        text = f"Thought: I should consult {tool} on this problem.\nAction: {tool}\nAction Input: {payload}"
        return Reply(text, None, None, 0.15)
    answer = decide(world, card, facts, temperature, meta.candidates, None, key, base)
    text = f"Thought: I now know the final answer.\nFinal Answer: {bare_answer(facts.answer_format, answer)}"
    return Reply(text, answer, same_answer(answer, facts.reference), 0.4)


def tool_role(card: Card, meta: RequestMeta, key: tuple[object, ...]) -> Reply:
    """alpha-UMi planner / caller / summarizer acting on the gold next turn with the card's accuracies."""
    from actors.backends.sim.tooluse import tool_reply

    reply: Reply = tool_reply(card, meta, key)
    return reply
