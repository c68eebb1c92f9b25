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
    """The confidence-plus-conformity rule shared by aggregator, judge, debater and the agent's final answer.

    The model cannot see whether an answer is right (no intrinsic self-correction); it sees
    only how sure it is of its own answer and what the others say.

    1. Its own answer: its solver answer for this sample (``base`` is the solver's key: the
       same model on the same problem believes what it would answer alone), or ``own``, a
       debater's previous answer. Its confidence ``q`` is its own probability of giving that
       answer again (``World.answer_prob``), right or wrong.
    2. If the plurality of the candidates (equivalent answers grouped) is its own answer, or
       there is none, it keeps its own answer.
    3. Against a plurality of m candidates (m capped at 3) it holds its own answer with
       probability ``judge_skill * q * (1 - conformity) ** (m - 1)``: the surer it is, the
       more it resists, and each further agreeing peer erodes the resistance.
    4. Otherwise it follows that plurality with probability 1 - (1 - conformity) ** m,
       else it keeps its own answer.
    """
    mine = world.draw(card, facts, temperature, *base).answer if own is None else own
    top = plurality([c for c in candidates if c is not None])
    if top is None or same_answer(top[0], mine):
        return mine
    m = min(top[1], 3)
    c = card.collab
    hold = c.judge_skill * world.answer_prob(card, facts, temperature, mine) * (1.0 - c.conformity) ** (m - 1)
    if unit("knows", *key) < hold:
        return mine
    if unit("conform", *key) < 1.0 - (1.0 - c.conformity) ** m:
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
    """Verifier: a verdict on ``meta.target``, judged against its own answer to the problem.

    It agrees with a target equal to its own answer (consistent-but-wrong included). A
    different target it rejects with probability ``judge_skill * q`` (``q``: its confidence
    in its own answer, right or wrong); otherwise it says CORRECT with ``accept_bias``.
    """
    target = meta.target
    mine = world.draw(card, facts, temperature, *base).answer
    if target is None:
        verdict = False
    elif same_answer(target, mine):
        verdict = True
    elif unit("knows", *key) < card.collab.judge_skill * world.answer_prob(card, facts, temperature, mine):
        verdict = False
    else:
        verdict = unit("accept", *key) < card.collab.accept_bias
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
