"""The simulator over a pool's problems: its cards with fitted values, problem copies, simulated pools.

What ``pool_fit`` varies and draws: the pool's problems rebuilt as the simulator sees them
(``problem_of``), cards carrying fitted global values and per-model abilities
(``with_params``, abilities by exact bisection in ``fit_abilities``), copies of problems
with fresh per-problem terms (``replicas``), and a pool drawn from the fitted simulator in
the recorded pool's format (``simulate_entries``).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence

from actors.backends.sim.answers import same_answer
from actors.backends.sim.cards import SimCards, load_cards
from actors.backends.sim.skill import unit
from actors.backends.sim.world import World, stick_prob
from experiments.studies.simulator.pool_stats import answer_key
from experiments.studies.slm_mux.sample_pool import PoolEntry, PoolSample
from protocols.messages import Problem

BEHAVIOUR_KEYS = ("stickiness", "focus_lost", "knowledge_scale", "shared_wrong_prob", "tilt_sd")
"""The global behaviour parameters a pool fit may set (``shared_sd`` is the benchmark's)."""
TEMPLATE = "Qwen2.5-7B-Instruct"
"""Non-skill traits (tokens, speed, collaboration) of a pool model that has no card."""


def problem_of(entry: PoolEntry, known: Mapping[str, Problem]) -> Problem:
    """The pool entry's problem: the dataset's own record if it is the same problem, else rebuilt from the entry.

    A pool's ``dataset`` names its benchmark and grader, not necessarily the shipped file: a
    pool of GSM8K-format problems from another file reuses the ids ``gsm8k/test/N``. The
    shipped record is the pool's problem only if its reference is the entry's; otherwise the
    record's metadata (GSM8K step counts, subject) would give the problem a difficulty it
    does not have, and its wrong answers would be built around another reference.
    """
    record = known.get(entry.problem_id)
    if record is not None and same_answer(record.reference, entry.reference):
        return record
    fmt = {"gsm8k": "gsm8k", "gpqa": "letter"}.get(entry.benchmark, "boxed")
    return Problem(
        id=entry.problem_id,
        benchmark=entry.benchmark,
        question=f"(pool problem {entry.problem_id})",
        reference=entry.reference,
        answer_format=fmt,
        domain=entry.domain,
        level=entry.level,
    )


def base_cards(models: Sequence[str], cards: SimCards | None = None) -> SimCards:
    """The committed cards plus a template copy for every pool model that has none."""
    cards = cards or load_cards()
    extra = {
        m: cards.cards[TEMPLATE].model_copy(update={"name": m, "targets": {}, "notes": "fitted to a pool"})
        for m in models
        if m not in cards.cards
    }
    return cards.model_copy(update={"cards": {**cards.cards, **extra}})


def with_params(cards: SimCards, bench: str, values: Mapping[str, float], abilities: Mapping[str, float]) -> SimCards:
    """Cards with the fitted global parameters and per-model abilities on ``bench``."""
    diff = cards.difficulty_of(bench).model_copy(update={"shared_sd": values["shared_sd"]})
    behaviour = cards.behaviour.model_copy(update={k: v for k, v in values.items() if k in BEHAVIOUR_KEYS})
    new_cards = {
        **cards.cards,
        **{
            m: cards.cards[m].model_copy(update={"ability": {**cards.cards[m].ability, bench: a}, "domain_offsets": {}})
            for m, a in abilities.items()
        },
    }
    return cards.model_copy(
        update={"difficulty": {**cards.difficulty, bench: diff}, "behaviour": behaviour, "cards": new_cards}
    )


def replicas(problems: Sequence[Problem], n: int) -> list[Problem]:
    """``n`` copies of each problem with fresh per-problem random terms (re-keyed ids).

    A problem's observable structure (benchmark, level, domain, steps, reference) is kept;
    its unobserved terms (shared difficulty draw, model-specific draws, wrong-answer pools)
    are keyed by the id, so each copy is a fresh draw from the fitted distribution. Fitting
    and predicting over copies is fitting and predicting the *distribution* of problems:
    held-out problems' own terms are unknown, so nothing else is an honest prediction.
    """
    return [p.model_copy(update={"id": f"{p.id}~{r}"}) for r in range(n) for p in problems]


def fit_abilities(
    cards: SimCards, problems: Sequence[Problem], targets: Mapping[str, float], temperature: float
) -> dict[str, float]:
    """Per model: the ability whose expected sample accuracy at ``temperature`` equals the pool's.

    The expectation is exact: P(right) of a sample is stick * [greedy right] + (1 - stick) * know.
    """
    world = World(cards)
    lam = stick_prob(cards.behaviour, temperature)
    facts = [world.facts(p) for p in problems]
    out = {}
    for model, target in targets.items():
        card = cards.card(model)
        keep = 1.0 - card.malformed_rate
        lo, hi = -12.0, 12.0
        for _ in range(22):
            mid = (lo + hi) / 2
            views = [world.view_at(card, f, mid) for f in facts]
            acc = statistics.fmean(lam * v.greedy_correct + (1.0 - lam) * v.know for v in views) * keep
            lo, hi = (mid, hi) if acc < target else (lo, mid)
        out[model] = round((lo + hi) / 2, 4)
    return out


def global_values(cards: SimCards, bench: str) -> dict[str, float]:
    return {
        "shared_sd": cards.difficulty_of(bench).shared_sd,
        "stickiness": cards.behaviour.stickiness,
        "focus_lost": cards.behaviour.focus_lost,
        "knowledge_scale": cards.behaviour.knowledge_scale,
        "shared_wrong_prob": cards.behaviour.shared_wrong_prob,
        "tilt_sd": cards.behaviour.tilt_sd,
    }


def simulate_entries(
    cards: SimCards, problems: Sequence[Problem], models: Sequence[str], k: int, temperature: float, seed: int
) -> list[PoolEntry]:
    """A simulated pool (answers grouped by normal form, as the graders' fast path does)."""
    world = World(cards)
    entries = []
    for index, p in enumerate(problems):
        facts = world.facts(p)
        classes: list[str] = []
        samples: dict[str, tuple[PoolSample, ...]] = {}
        for m in models:
            card = cards.card(m)
            rows = []
            for i in range(k):
                draw = world.draw(card, facts, temperature, seed, m, facts.key, i)
                malformed = world_unit(seed, m, facts.key, i) < card.malformed_rate
                answer = None if malformed else draw.answer
                label = None
                if answer is not None:
                    key = answer_key(answer)
                    if key not in classes:
                        classes.append(str(key))
                    label = classes.index(str(key))
                rows.append(PoolSample(i=i, answer=answer, label=label, correct=answer is not None and draw.correct))
            samples[m] = tuple(rows)
        correct = tuple(i for i, c in enumerate(classes) if same_answer(c, p.reference))
        entries.append(
            PoolEntry(
                problem_id=p.id,
                index=index,
                benchmark=p.benchmark,
                reference=p.reference,
                classes=tuple(classes),
                correct_labels=correct,
                samples=samples,
            )
        )
    return entries


def world_unit(*parts: object) -> float:
    """The seeded unit draw that decides whether a simulated sample is malformed."""
    return unit("pool-malformed", *parts)
