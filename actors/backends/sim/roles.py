"""Behaviour of a simulated model in each role: solver, aggregator/judge, debater, verifier, agent.

Each function is pure: it takes the world, a card, the problem's facts, the request's
``RequestMeta`` and a randomness key, and returns a ``Reply`` (text plus what the
simulator knows about it). The rules are documented in ``docs/simulator.md``.
"""

from __future__ import annotations

import json
import math

from actors.backends.sim.answers import normalize, same_answer
from actors.backends.sim.cards import Card
from actors.backends.sim.skill import gumbel, logit, sigmoid, unit
from actors.backends.sim.text import (
    Malformed,
    Reply,
    bare_answer,
    review_text,
    solver_text,
    verdict_text,
)
from actors.backends.sim.tooluse import tool_reply
from actors.backends.sim.world import Facts, World
from protocols.messages import RequestMeta

MALFORMED_MODES: tuple[Malformed, ...] = ("truncated", "no_final", "unclosed_box")


def malformed_mode(rate: float, *key: object) -> Malformed | None:
    """Whether (and how) this reply is malformed, at ``rate``."""
    if unit("malformed", *key) >= rate:
        return None
    return MALFORMED_MODES[int(unit("malformed-mode", *key) * len(MALFORMED_MODES))]


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


def own_answer(
    world: World, card: Card, facts: Facts, temperature: float, base: tuple[object, ...], context: str
) -> str:
    """What a collaborator itself believes: its greedy answer in this prompt situation, or a fresh draw.

    The same model in another prompt (a transcript of peers, a ReAct history) takes another
    decoding path: at T = 0 its belief is the greedy draw re-keyed by ``context`` (same
    knowledge, another path; seed-free), at T > 0 a sample independent of its solver sample.
    """
    if temperature <= 0:
        return world.view(card, facts, context).greedy
    return world.draw(card, facts, temperature, *base, context).answer


def options(candidates: tuple[str | None, ...], mine: str) -> list[tuple[str, int, bool]]:
    """(answer, supporters, shown last) per distinct answer among the candidates, plus the own answer."""
    groups: list[list[object]] = []
    shown = [c for c in candidates if c is not None]
    for i, c in enumerate(shown):
        for g in groups:
            if same_answer(str(g[0]), c):
                g[1] = int(str(g[1])) + 1
                g[2] = g[2] or i == len(shown) - 1
                break
        else:
            groups.append([c, 1, i == len(shown) - 1])
    out = [(str(a), int(str(n)), bool(last)) for a, n, last in groups]
    if not any(same_answer(a, mine) for a, _, _ in out):
        out.append((mine, 0, False))
    return out


def choose(
    world: World,
    card: Card,
    facts: Facts,
    temperature: float,
    candidates: tuple[str | None, ...],
    mine: str,
    solutions_read: float,
    key: tuple[object, ...],
) -> str:
    """A random-utility (multinomial logit) choice among the candidates' answers and the own one.

    utility(answer) = conformity_weight * conformity * log(1 + supporters)   (peer pressure)
                    + recency * [shown last]                                    (recency bias)
                    + ctx * (discrimination * judge_skill + recognition) * (0.25 + 0.75 know) * (+/-1)
                    + ctx * self_weight * judge_skill * q * [own answer]         (self-belief)
    plus a Gumbel draw per answer, keyed; ctx = ``World.context_factor`` of the solutions read
    is context degradation (the longer the transcript, the less the model judges). ``know``
    is the model's own knowledge of the problem: it may recognise a right answer it could
    not produce, weakly if it is lost, and a wrong answer can fool it. ``q`` is its
    confidence in its own answer, right or wrong.
    """
    b = world.cards.behaviour
    c = card.collab
    view = world.view(card, facts)
    ctx = world.context_factor(facts, solutions_read)
    recognise = ctx * (b.discrimination * c.judge_skill + c.recognition) * (0.25 + 0.75 * view.know)
    belief = ctx * b.self_weight * c.judge_skill * world.answer_prob(card, facts, temperature, mine)
    best, best_u = mine, -math.inf
    for answer, supporters, last in options(candidates, mine):
        u = b.conformity_weight * c.conformity * math.log1p(supporters) + b.recency * last
        u += recognise if same_answer(answer, facts.reference) else -recognise
        u += belief if same_answer(answer, mine) else 0.0
        u += gumbel("choose", *key, normalize(answer))
        if u > best_u:
            best, best_u = answer, u
    return best


def decide(
    world: World,
    card: Card,
    facts: Facts,
    temperature: float,
    candidates: tuple[str | None, ...],
    own: str | None,
    key: tuple[object, ...],
    base: tuple[object, ...],
    context: str = "aggregator",
    solutions_read: float | None = None,
) -> str:
    """The final answer of an aggregator, judge, debater or agent: ``choose`` over candidates and its own.

    ``own`` (a debater's previous answer) overrides the model's own belief (``own_answer``).
    """
    mine = own if own is not None else own_answer(world, card, facts, temperature, base, context)
    read = len([x for x in candidates if x is not None]) if solutions_read is None else solutions_read
    return choose(world, card, facts, temperature, candidates, mine, read, key)


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
    rounds = meta.extra.get("round", 2)
    # What it reads: the candidates' solutions; a debater in round r has read r - 1 rounds of
    # every seat's solution (its own turns included): context degradation grows with the transcript.
    shown = len([c for c in meta.candidates if c is not None])
    read = shown * max(1, rounds - 1 if isinstance(rounds, int) else 1)
    answer = decide(
        world,
        card,
        facts,
        temperature,
        meta.candidates,
        own if isinstance(own, str) else None,
        key,
        base,
        context=meta.role,
        solutions_read=read,
    )
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
    """Verifier: a verdict on ``meta.target`` from its own discrimination and its own belief.

    P(CORRECT) = sigmoid(logit(accept_bias) + r * (+1 right / -1 wrong) + s * (+1 if the target
    is its own answer, -1 if not)), with r = ctx * (verify_discrimination * judge_skill + recognition) * (0.25 + 0.75
    know) (it can accept a right answer it could not produce, and be fooled by a wrong one)
    and s = ctx * self_weight * judge_skill * q / 2 (it leans to its own solution, right or
    wrong, by its confidence q in it). Verification is not voting in disguise: a verifier
    lost on the problem still tells right from wrong a little, and says CORRECT to
    plausible wrong answers at its accept bias.
    """
    target = meta.target
    b = world.cards.behaviour
    c = card.collab
    if target is None:
        verdict = False
    else:
        mine = own_answer(world, card, facts, temperature, base, "verifier")
        view = world.view(card, facts)
        # It reads the target's solution (and any other candidates shown with it).
        ctx = world.context_factor(facts, max(1, len(meta.candidates)))
        recognise = ctx * (b.verify_discrimination * c.judge_skill + c.recognition) * (0.25 + 0.75 * view.know)
        lean = ctx * b.self_weight * c.judge_skill * world.answer_prob(card, facts, temperature, mine) / 2.0
        bias = logit(min(max(c.accept_bias, 1e-6), 1 - 1e-6))
        z = bias + (recognise if same_answer(target, facts.reference) else -recognise)
        z += lean if same_answer(target, mine) else -lean
        verdict = unit("accept", *key) < sigmoid(z)
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
    # The agent's own belief comes from its own reading of the problem in the ReAct context,
    # not from its raw tool's sample; it weighs the tool answers by agreement, recency and
    # its ability to judge them (``choose``), so stacking can beat, match or fall below its anchor.
    answer = decide(world, card, facts, temperature, meta.candidates, None, key, base, context="agent")
    text = f"Thought: I now know the final answer.\nFinal Answer: {bare_answer(facts.answer_format, answer)}"
    return Reply(text, answer, same_answer(answer, facts.reference), 0.4)


def tool_role(card: Card, meta: RequestMeta, key: tuple[object, ...]) -> Reply:
    """alpha-UMi planner / caller / summarizer acting on the gold next turn with the card's accuracies."""
    return tool_reply(card, meta, key)
