"""The simulated world: per-problem difficulty and wrong answers, per-model knowledge and draws.

A problem's difficulty and its wrong-answer pools are properties of the problem
(seed-independent). A model's knowledge of a problem, its wrong-answer distribution and
its *greedy answer* are properties of the model (seed-independent): a real model at
T = 0 gives the same answer on every run. Only the draws at T > 0 (which sample is
right, which wrong answer) depend on the run seed and the sample index.

One model's answer distribution on one problem (``ModelView``), at the native
temperature T = 1:

- right with probability ``know`` = sigmoid(knowledge_scale * margin);
- otherwise a *structured* mistake (the problem's shared slips, tilted by the model,
  plus the model's own slips) with probability ``focus``, which grows with the model's
  partial knowledge, else a *scattered* answer (one of many, rarely repeated): a model
  that is lost on a problem does not repeat itself.

A sample at 0 < T < 1 follows the greedy path with probability ``(1 - T) ** stickiness``
and is otherwise a fresh native draw; above T = 1 the native draw itself degrades.
Rules, parameters and sources: ``docs/simulator.md``.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

from actors.backends.sim.answers import same_answer, scatter_answers, wrong_candidates
from actors.backends.sim.cards import Behaviour, Card, SimCards
from actors.backends.sim.skill import choice, gumbel, normal, sigmoid, temperature_penalty, unit
from protocols.messages import Problem

CACHE_SIZE = 4096
"""Problems whose facts (and each model's view) a world keeps, least recently used first out.

A problem's facts are read by every call on it, and those calls all come while it is in
flight; a run has ``runners x problems_in_flight`` problems in flight (64 by default,
4,096 for 64 runners x 64). So a cache of the in-flight set saves all the rebuilding,
and one of every problem seen (it was 50,000) only grows a model actor with N: ~5 KB a
problem, 369 MB at 100k (``python -m benchmarks.driver_memory``). A larger in-flight set
than this only rebuilds some facts: they are a pure function of the problem."""


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
    scatter: tuple[str, ...]
    """The problem's scattered answers: what lost models say (each rarely)."""


@dataclass(frozen=True, slots=True)
class ModelView:
    """One model's view of one problem: its knowledge, its mistakes and its greedy answer."""

    margin: float
    know: float
    """P(one native, T = 1, sample is right)."""
    wrong: tuple[str, ...]
    """The structured wrong answers (shared slips first, then the model's own)."""
    wrong_weights: tuple[float, ...]
    """Their probabilities given a structured mistake (sum 1)."""
    focus: float
    """Share of the wrong mass on the structured answers; the rest scatters."""
    greedy: str
    greedy_correct: bool


@dataclass(frozen=True, slots=True)
class Draw:
    """One sampled attempt: whether it is right, the answer it gives, and P(right) of such a sample."""

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


def stick_prob(b: Behaviour, temperature: float) -> float:
    """P(a sample at ``temperature`` follows the greedy path): 1 at T = 0, 0 from T = 1 on."""
    if temperature <= 0:
        return 1.0
    if temperature >= 1:
        return 0.0
    return (1.0 - temperature) ** b.stickiness


def focus_of(b: Behaviour, know: float) -> float:
    """Share of a model's wrong mass on structured slips: low when lost, high with partial knowledge."""
    return b.focus_lost + (b.focus_known - b.focus_lost) * know


VIEWS_PER_PROBLEM = 6
"""Views kept per cached problem: a process's world serves every simulated model of that
process (``shared_world``: a runner's three SLM-MUX models, serve-sim's cards), each with a
solver view and an agent view (``context``) a problem may need. A world asked about more
models rebuilds the evicted ones: a view is a pure function of its inputs."""


class World:
    """Per-problem facts and per-model views, cached (the in-flight set: ``CACHE_SIZE``), for one set of cards."""

    def __init__(self, cards: SimCards) -> None:
        self.cards = cards
        self._facts: OrderedDict[tuple[str, str, str], Facts] = OrderedDict()
        self._views: OrderedDict[tuple[str, str, float], ModelView] = OrderedDict()
        self._solution_tokens: dict[str, float] = {}

    def solution_tokens(self, benchmark: str) -> float:
        """A typical solution's length on ``benchmark``: the median of the cards' mean completion tokens.

        Simulated texts are short templates, so what a collaborator *reads* is measured in
        the tokens real solutions would have (the cards' length statistics), not in the
        template's characters.
        """
        hit = self._solution_tokens.get(benchmark)
        if hit is None:
            means = sorted(c.tokens_on(benchmark).mean for c in self.cards.cards.values())
            hit = means[len(means) // 2] if means else 500.0
            self._solution_tokens[benchmark] = hit
        return hit

    def context_factor(self, facts: Facts, solutions_read: float) -> float:
        """Context degradation: 1 / (1 + L / context_tokens), L the tokens of the solutions read.

        Reasoning over the same task degrades as the input grows, well inside the context
        window (Levy et al. 2024, arXiv 2402.14848; Liu et al. 2024, arXiv 2307.03172).
        """
        read = max(0.0, solutions_read) * self.solution_tokens(facts.benchmark)
        return 1.0 / (1.0 + read / self.cards.behaviour.context_tokens)

    def facts(self, problem: Problem) -> Facts:
        """Difficulty and wrong-answer pools of ``problem`` (cached by id and reference)."""
        cache_key = (problem.benchmark, problem.id, problem.reference)
        hit = self._facts.get(cache_key)
        if hit is not None:
            self._facts.move_to_end(cache_key)
            return hit
        facts = self._build_facts(problem)
        self._facts[cache_key] = facts
        if len(self._facts) > CACHE_SIZE:
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
        choices = len(problem.choices) or 4
        pool = wrong_candidates(
            problem.reference,
            problem.answer_format,
            ("wrong", key),
            choices=choices,
            solution=solution if isinstance(solution, str) else None,
        )
        b = self.cards.behaviour
        shared = tuple(pool[: b.shared_wrong])
        lo, hi = b.wrong_decay
        decay = lo + (hi - lo) * unit("wrong-decay", key)
        weights = tuple(math.exp(-decay * i) for i in range(len(shared)))
        scatter = scatter_answers(problem.reference, problem.answer_format, ("scatter", key), b.scatter_slots, choices)
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
            scatter=scatter,
        )

    def view(self, card: Card, facts: Facts, context: str = "") -> ModelView:
        """``card``'s knowledge, mistakes and greedy answer on the problem (cached).

        ``context`` names a prompt situation whose greedy path differs from the plain
        solver's (e.g. ``"agent"``: the same model reading a ReAct transcript takes another
        path); knowledge and mistakes are the same, only the greedy draw is re-keyed.
        """
        ability = card.ability_on(facts.benchmark, facts.domain)
        cache_key = (card.name, facts.key, ability)
        if context:
            cache_key = (f"{card.name}|{context}", facts.key, ability)
        hit = self._views.get(cache_key)
        if hit is not None:
            self._views.move_to_end(cache_key)
            return hit
        view = self.view_at(card, facts, ability, context)
        self._views[cache_key] = view
        if len(self._views) > VIEWS_PER_PROBLEM * CACHE_SIZE:
            self._views.popitem(last=False)
        return view

    def view_at(self, card: Card, facts: Facts, ability: float, context: str = "") -> ModelView:
        """The view at a given ability (uncached; calibration bisects over ``ability``)."""
        b = self.cards.behaviour
        margin = ability - facts.difficulty - b.specific_sd * normal("specific", card.name, facts.key)
        know = sigmoid(b.knowledge_scale * margin)
        shared_w = [
            w * math.exp(b.tilt_sd * normal("tilt", card.name, facts.key, i))
            for i, w in enumerate(facts.shared_weights)
        ]
        # The model's own slips: a seeded pick among the problem's other candidates.
        spare = sorted(facts.spare_wrong, key=lambda a: unit("private", card.name, facts.key, a))
        private = spare[: b.private_wrong]
        private_w = [math.exp(-0.7 * i) for i in range(len(private))]
        shared_mass = b.shared_wrong_prob if private else 1.0
        if not shared_w:
            shared_mass = 0.0
        weights = [shared_mass * w for w in _normalised(shared_w)]
        weights += [(1.0 - shared_mass) * w for w in _normalised(private_w)]
        wrong = facts.shared_wrong + tuple(private)
        focus = focus_of(b, know) if facts.scatter else 1.0
        greedy = self._greedy(card, facts, know, wrong, weights, focus, context)
        return ModelView(margin, know, wrong, tuple(weights), focus, greedy, same_answer(greedy, facts.reference))

    def _greedy(
        self,
        card: Card,
        facts: Facts,
        know: float,
        wrong: tuple[str, ...],
        weights: list[float],
        focus: float,
        context: str,
    ) -> str:
        """Greedy decoding: right or wrong by a seed-free Gumbel-max draw at ``greedy_temperature``.

        Greedy decoding follows the locally most likely tokens, which usually (not always)
        ends at the outcome the model reaches most often: right with probability
        know^(1/Tg) / (know^(1/Tg) + (1 - know)^(1/Tg)), a sharpened version of its native
        P(right). When it is wrong, which wrong answer is a seed-free native draw of the
        model's mistakes: a structured slip with probability ``focus``, else a scattered one.
        """
        b = self.cards.behaviour
        inv = 1.0 / b.greedy_temperature
        tag = ("greedy", card.name, facts.key, context)
        right = inv * math.log(max(know, 1e-300)) + gumbel(*tag, "right")
        miss = inv * math.log(max(1.0 - know, 1e-300)) + gumbel(*tag, "wrong")
        if right >= miss or not (wrong or facts.scatter):
            return facts.reference
        partial = ModelView(0.0, know, wrong, tuple(weights), focus, facts.reference, True)
        return self.wrong_answer(partial, facts, focus, unit(*tag, "which"))

    def greedy_threshold(self, card: Card, facts: Facts, context: str = "") -> float:
        """The ability (benchmark ability + domain offset) above which the greedy answer is right.

        Greedy is right when inv * log(know) + G_right >= inv * log(1 - know) + G_wrong, i.e.
        knowledge_scale * margin >= greedy_temperature * (G_wrong - G_right): one threshold.
        """
        if not (facts.shared_wrong or facts.spare_wrong or facts.scatter):
            return -math.inf
        b = self.cards.behaviour
        tag = ("greedy", card.name, facts.key, context)
        gap = b.greedy_temperature * (gumbel(*tag, "wrong") - gumbel(*tag, "right")) / b.knowledge_scale
        return facts.difficulty + b.specific_sd * normal("specific", card.name, facts.key) + gap

    def native(self, card: Card, facts: Facts, temperature: float) -> tuple[float, float]:
        """(P(right), focus) of one fresh draw at ``temperature`` (degraded above T = 1)."""
        view = self.view(card, facts)
        penalty = temperature_penalty(temperature)
        if penalty <= 0:
            return view.know, view.focus
        know = sigmoid(self.cards.behaviour.knowledge_scale * view.margin - penalty)
        return know, focus_of(self.cards.behaviour, know) * math.exp(-penalty)

    def draw(self, card: Card, facts: Facts, temperature: float, *key: object) -> Draw:
        """One attempt by ``card`` at the problem at ``temperature``; ``key`` fixes the randomness.

        At T = 0 the key is ignored: the greedy answer is a property of (model, problem).
        """
        view = self.view(card, facts)
        p = self.p_right(card, facts, temperature)
        if temperature <= 0 or unit("stick", *key) < stick_prob(self.cards.behaviour, temperature):
            return Draw(view.greedy_correct, view.greedy, p)
        know, focus = self.native(card, facts, temperature)
        if unit("correct", *key) < know or not (view.wrong or facts.scatter):
            return Draw(True, facts.reference, p)
        return Draw(False, self.wrong_answer(view, facts, focus, unit("which-wrong", *key)), p)

    def p_right(self, card: Card, facts: Facts, temperature: float) -> float:
        """P(one sample at ``temperature`` is right)."""
        view = self.view(card, facts)
        lam = stick_prob(self.cards.behaviour, temperature)
        know, _ = self.native(card, facts, temperature)
        return lam * view.greedy_correct + (1.0 - lam) * know

    def answer_prob(self, card: Card, facts: Facts, temperature: float, answer: str | None) -> float:
        """P(one attempt by ``card`` at ``temperature`` gives ``answer``): the model's own confidence in it.

        The greedy path's answer plus the native distribution's share of it: right answers
        have P(right); a wrong one its share of the model's wrong mass. This is
        consistency-based confidence: how sure a model can be of an answer without knowing
        whether it is right.
        """
        if answer is None:
            return 0.0
        view = self.view(card, facts)
        lam = stick_prob(self.cards.behaviour, temperature)
        know, focus = self.native(card, facts, temperature)
        if same_answer(answer, facts.reference):
            native = know
        else:
            share = sum(w for a, w in zip(view.wrong, view.wrong_weights, strict=True) if same_answer(a, answer))
            scattered = sum(1 for a in facts.scatter if same_answer(a, answer)) / max(1, len(facts.scatter))
            native = (1.0 - know) * (focus * share + (1.0 - focus) * scattered)
        return lam * same_answer(answer, view.greedy) + (1.0 - lam) * native

    def wrong_answer(self, view: ModelView, facts: Facts, focus: float, u: float) -> str:
        """A fresh wrong answer: a structured slip with probability ``focus``, else a scattered one."""
        if view.wrong and (u < focus or not facts.scatter):
            return view.wrong[choice(u / focus if focus > 0 else 0.0, view.wrong_weights)]
        v = (u - focus) / (1.0 - focus) if focus < 1.0 else u
        return facts.scatter[min(len(facts.scatter) - 1, int(v * len(facts.scatter)))]


def _normalised(weights: list[float]) -> list[float]:
    total = sum(weights)
    return [w / total for w in weights] if total > 0 else []


WORLDS_KEPT = 4
"""Card sets whose world a process keeps (as ``cards.load_cards`` keeps card files): a fit or a
test that makes many card variants does not keep every one's caches."""
_WORLDS: OrderedDict[int, tuple[SimCards, World]] = OrderedDict()


def shared_world(cards: SimCards) -> World:
    """This process's world for ``cards``, shared by every backend simulating with them.

    A problem's facts (difficulty, wrong-answer pools) are the same for every model, so the
    backends of one process build them once instead of once a model (facts were ~60% of a
    simulated completion's CPU, profiled; three models built them three times).
    Everything a world holds is a pure function of its inputs, so sharing changes no reply.
    """
    hit = _WORLDS.get(id(cards))
    if hit is None or hit[0] is not cards:  # ``is``: an id can be reused once its object is gone
        hit = (cards, World(cards))
        _WORLDS[id(cards)] = hit
        if len(_WORLDS) > WORLDS_KEPT:
            _WORLDS.popitem(last=False)
    else:
        _WORLDS.move_to_end(id(cards))
    return hit[1]
