"""The simulated world: per-problem difficulty and wrong answers, per-model draws.

A problem's difficulty and its wrong-answer pools are properties of the problem
(seed-independent); a model's specific per-problem term is a property of the model
(seed-independent); only the *draws* (which sample is right, which wrong answer,
malformed or not) depend on the run seed. Per-problem facts are cached because
experiments ask about the same problem thousands of times.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

from actors.backends.sim.answers import same_answer, wrong_candidates
from actors.backends.sim.cards import Card, SimCards
from actors.backends.sim.skill import choice, normal, p_correct, temperature_scale, unit
from protocols.messages import Problem

_CACHE_SIZE = 50_000


@dataclass(frozen=True, slots=True)
class Facts:
    """What the simulator knows about one problem (computed once, cached)."""

    key: str
    benchmark: str
    answer_format: str
    reference: str
    domain: str | None
    difficulty: float
    shared_wrong: tuple[str, ...]
    shared_weights: tuple[float, ...]
    spare_wrong: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ModelView:
    """One model's view of one problem: its skill margin and its wrong-answer distribution."""

    margin: float
    wrong: tuple[str, ...]
    shared_weights: tuple[float, ...]
    private_weights: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class Draw:
    """One sampled attempt: whether it is right, the answer it gives, and P(right) it was drawn with."""

    correct: bool
    answer: str
    p: float


def problem_key(problem: Problem) -> str:
    """The identity of a problem inside the simulator (benchmark and id)."""
    return f"{problem.benchmark}/{problem.id}"


def problem_domain(problem: Problem) -> str | None:
    """The difficulty domain: the MATH subject, the GPQA high-level domain, ..."""
    return problem.domain or problem.metadata.get("subject") or problem.metadata.get("domain")


def problem_steps(problem: Problem) -> int | None:
    """GSM8K: the number of reasoning steps (metadata ``steps``, else counted in the solution)."""
    steps = problem.metadata.get("steps")
    if isinstance(steps, int):
        return steps
    solution = problem.metadata.get("solution")
    if isinstance(solution, str) and "<<" in solution:
        return solution.count("<<")
    return None


class World:
    """Per-problem facts and per-model views, cached, for one set of cards."""

    def __init__(self, cards: SimCards) -> None:
        self.cards = cards
        self._facts: OrderedDict[tuple[str, str, str], Facts] = OrderedDict()
        self._views: OrderedDict[tuple[str, str], ModelView] = OrderedDict()

    def facts(self, problem: Problem) -> Facts:
        """Difficulty and wrong-answer pools of ``problem`` (cached by id and reference)."""
        cache_key = (problem.benchmark, problem.id, problem.reference)
        hit = self._facts.get(cache_key)
        if hit is not None:
            return hit
        facts = self._build_facts(problem)
        self._facts[cache_key] = facts
        if len(self._facts) > _CACHE_SIZE:
            self._facts.popitem(last=False)
        return facts

    def _build_facts(self, problem: Problem) -> Facts:
        key = problem_key(problem)
        diff = self.cards.difficulty_of(problem.benchmark)
        domain = problem_domain(problem)
        d = diff.shared_sd * normal("difficulty", key)
        if problem.level is not None:
            d += diff.level.get(problem.level, 0.0)
        if domain is not None:
            d += diff.domain.get(domain, 0.0)
        steps = problem_steps(problem)
        if steps is not None:
            d += diff.steps_slope * (steps - diff.steps_center)
        solution = problem.metadata.get("solution")
        pool = wrong_candidates(
            problem.reference,
            problem.answer_format,
            ("wrong", key),
            choices=len(problem.choices) or 4,
            solution=solution if isinstance(solution, str) else None,
        )
        b = self.cards.behaviour
        shared = tuple(pool[: b.shared_wrong])
        lo, hi = b.wrong_decay
        decay = lo + (hi - lo) * unit("wrong-decay", key)
        weights = tuple(math.exp(-decay * i) for i in range(len(shared)))
        return Facts(
            key=key,
            benchmark=problem.benchmark,
            answer_format=problem.answer_format,
            reference=problem.reference,
            domain=domain,
            difficulty=d,
            shared_wrong=shared,
            shared_weights=weights,
            spare_wrong=tuple(pool[b.shared_wrong :]),
        )

    def view(self, card: Card, facts: Facts) -> ModelView:
        """``card``'s margin on the problem and its own tilt of the wrong answers (cached)."""
        cache_key = (card.name, facts.key)
        hit = self._views.get(cache_key)
        if hit is not None:
            return hit
        b = self.cards.behaviour
        margin = (
            card.ability_on(facts.benchmark, facts.domain)
            - facts.difficulty
            - b.specific_sd * normal("specific", card.name, facts.key)
        )
        shared_w = tuple(
            w * math.exp(b.tilt_sd * normal("tilt", card.name, facts.key, i))
            for i, w in enumerate(facts.shared_weights)
        )
        # The model's private wrong answers: a seeded pick among the problem's other slips.
        spare = list(facts.spare_wrong)
        spare.sort(key=lambda a: unit("private", card.name, facts.key, a))
        private = tuple(spare[: b.private_wrong])
        private_w = tuple(math.exp(-0.7 * i) for i in range(len(private)))
        view = ModelView(margin, facts.shared_wrong + private, shared_w, private_w)
        self._views[cache_key] = view
        if len(self._views) > _CACHE_SIZE:
            self._views.popitem(last=False)
        return view

    def draw(self, card: Card, facts: Facts, temperature: float, *key: object) -> Draw:
        """One attempt by ``card`` at the problem at ``temperature``; ``key`` fixes the randomness."""
        view = self.view(card, facts)
        p = p_correct(view.margin, temperature)
        if unit("correct", *key) < p or not view.wrong:
            return Draw(True, facts.reference, p)
        return Draw(False, self.wrong_answer(view, temperature, unit("which-wrong", *key)), p)

    def answer_prob(self, card: Card, facts: Facts, temperature: float, answer: str | None) -> float:
        """P(one attempt by ``card`` at ``temperature`` gives ``answer``): the model's own confidence in it.

        Right answers have P(correct); a wrong one its share of the model's wrong mass; an
        answer outside the model's repertoire (or none) has 0. This is consistency-based
        confidence: how sure a model can be of an answer without knowing whether it is right.
        """
        if answer is None:
            return 0.0
        view = self.view(card, facts)
        p = p_correct(view.margin, temperature)
        if same_answer(answer, facts.reference):
            return p
        weights = self._wrong_weights(view, temperature)
        share = sum(w for a, w in zip(view.wrong, weights, strict=True) if same_answer(a, answer))
        return (1.0 - p) * share

    def wrong_answer(self, view: ModelView, temperature: float, u: float) -> str:
        """Pick a wrong answer: shared pool (groupthink) or the model's own, flatter when hotter."""
        return view.wrong[choice(u, self._wrong_weights(view, temperature))]

    def _wrong_weights(self, view: ModelView, temperature: float) -> list[float]:
        """The model's probabilities over ``view.wrong`` given that it is wrong."""
        b = self.cards.behaviour
        # Up to the usual sampling temperatures a model's slips keep their shape (it tends to
        # make the same mistake); above T=0.7 they spread out.
        gamma = min(1.0, math.sqrt(temperature_scale(0.7) / temperature_scale(temperature)))
        n_shared = len(view.shared_weights)
        shared_mass = b.shared_wrong_prob if view.private_weights else 1.0
        if n_shared == 0:
            shared_mass = 0.0
        weights = [shared_mass * w for w in _normalised([w**gamma for w in view.shared_weights])]
        weights += [(1.0 - shared_mass) * w for w in _normalised([w**gamma for w in view.private_weights])]
        return weights


def _normalised(weights: list[float]) -> list[float]:
    total = sum(weights)
    return [w / total for w in weights] if total > 0 else []
