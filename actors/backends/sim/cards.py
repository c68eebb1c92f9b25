"""Model cards of the simulator: the calibrated parameters of each simulated model.

``cards.yaml`` (next to this module) is *generated* by ``slmsim calibrate``
from the hand-written ``inputs.yaml`` plus the public single-model figures; only
abilities (and MATH subject terms) are fitted, everything else is a documented input.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field

from protocols.config import Strict

CARDS_PATH = Path(__file__).with_name("cards.yaml")
INPUTS_PATH = Path(__file__).with_name("inputs.yaml")
_PRIOR = re.compile(r"^prior:(\d+(?:\.\d+)?)[bB]$")


class TokenStats(Strict):
    """Completion length of one benchmark's answers, in tokens (lognormal with this mean and sd)."""

    mean: float = Field(gt=0)
    sd: float = Field(ge=0)


class CardPrice(Strict):
    """Approximate public API price, USD per million tokens."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)


class Collab(Strict):
    """How the model behaves when shown other answers (aggregator, judge, debater, verifier, agent)."""

    judge_skill: float = Field(ge=0, le=1)
    """Scale of its self-belief (x self_weight x confidence) and of its discrimination weights."""
    conformity: float = Field(ge=0, le=1)
    """Scale of the pull of agreeing peers (x conformity_weight x log(1 + supporters))."""
    accept_bias: float = Field(ge=0, le=1)
    """Verifier: its prior leaning to say CORRECT (the bias term of its verdict)."""
    recognition: float = Field(default=0.0, ge=0)
    """Size-class prior (logit) of recognising a right answer, added to the fitted discrimination
    x judge_skill. 0 for the small and medium classes, whose discrimination the orchestration fit
    pins; larger models are better judges (see docs/simulator.md)."""


class ToolUse(Strict):
    """Tool-use accuracies (fractions) of the planner/caller/summarizer roles."""

    plan_acc: float = Field(ge=0, le=1)
    act_em: float = Field(ge=0, le=1)
    hallu: float = Field(ge=0, le=1)
    arg_f1: float = Field(ge=0, le=1)
    rouge_l: float = Field(ge=0, le=1)


class Target(Strict):
    """The accuracy (percent) a card was calibrated to on one benchmark, and where it comes from."""

    value: float = Field(ge=0, le=100)
    source: str


class Card(Strict):
    """One simulated model: skill, output length, speed, price, failure and collaboration traits."""

    name: str
    params_b: float | None = None
    ability: dict[str, float] = Field(default_factory=dict)
    """Logit ability per benchmark (fitted by calibration)."""
    domain_offsets: dict[str, dict[str, float]] = Field(default_factory=dict)
    """Model-specific ability offsets per benchmark domain (fitted where public figures exist)."""
    targets: dict[str, Target] = Field(default_factory=dict)
    tokens: dict[str, TokenStats]
    ttft_s: float = Field(gt=0)
    decode_tps: float = Field(gt=0)
    price: CardPrice
    malformed_rate: float = Field(ge=0, le=1)
    collab: Collab
    tool_use: ToolUse
    notes: str = ""

    def ability_on(self, benchmark: str, domain: str | None) -> float:
        """Ability on a benchmark's domain; an unknown benchmark uses the mean of the known ones."""
        if benchmark in self.ability:
            base = self.ability[benchmark]
        elif self.ability:
            base = sum(self.ability.values()) / len(self.ability)
        else:
            base = 0.0
        if domain is not None:
            base += self.domain_offsets.get(benchmark, {}).get(domain, 0.0)
        return base

    def tokens_on(self, benchmark: str) -> TokenStats:
        """Completion-length statistics for a benchmark (``default`` if it has none)."""
        return self.tokens.get(benchmark) or self.tokens["default"]


class BenchDifficulty(Strict):
    """The shared difficulty structure of one benchmark's problems (logit units)."""

    shared_sd: float = Field(ge=0)
    """Sd of the seeded per-problem term shared by all models (makes errors correlated)."""
    level: dict[int, float] = Field(default_factory=dict)
    domain: dict[str, float] = Field(default_factory=dict)
    steps_slope: float = 0.0
    steps_center: float = 0.0


class Behaviour(Strict):
    """Global parameters of the simulator's knowledge, sampling, mistake and collaboration model."""

    specific_sd: float = Field(ge=0)
    """Sd of the model-specific per-problem term (complementarity between models)."""
    knowledge_scale: float = Field(default=1.0, gt=0)
    """know = sigmoid(knowledge_scale * margin): how close to bimodal per-problem knowledge is."""
    greedy_temperature: float = Field(default=0.3, gt=0)
    """Greedy decoding is a seed-free Gumbel-max draw of the native answers at this temperature."""
    stickiness: float = Field(default=1.0, gt=0)
    """A sample at 0 < T < 1 follows the greedy path with probability (1 - T) ** stickiness."""
    shared_wrong: int = Field(ge=1)
    """How many of a problem's wrong answers are shared across models."""
    private_wrong: int = Field(ge=0)
    shared_wrong_prob: float = Field(ge=0, le=1)
    """Chance that a structured mistake comes from the shared pool rather than the model's own."""
    wrong_decay: tuple[float, float]
    """Range of the per-problem decay of shared wrong-answer weights, exp(-decay * rank)."""
    tilt_sd: float = Field(ge=0)
    """Sd of the model-specific log-tilt of the shared wrong-answer weights."""
    focus_lost: float = Field(default=0.2, ge=0, le=1)
    """Share of the wrong mass on structured slips when the model knows nothing (know = 0)."""
    focus_known: float = Field(default=0.9, ge=0, le=1)
    """... and when it nearly knows the problem (know -> 1): partial knowledge makes slips repeatable."""
    scatter_slots: int = Field(default=40, ge=0)
    """How many scattered wrong answers a problem has (what lost models say, each rarely)."""
    wrong_longer: float = Field(gt=0)
    """Completion-length factor of wrong answers relative to right ones."""
    discrimination: float = Field(default=1.0, ge=0)
    """Logit weight of a reviewer's or verifier's recognition of a right answer (x judge_skill)."""
    verify_discrimination: float = Field(default=1.0, ge=0)
    """Logit weight of a verifier's recognition of a right target (x judge_skill): a yes/no check of
    one answer, set apart from choosing among several (``discrimination``)."""
    conformity_weight: float = Field(default=1.5, ge=0)
    """Logit pull of log(1 + supporters) of an answer among the candidates (x conformity)."""
    self_weight: float = Field(default=3.0, ge=0)
    """Logit pull of a collaborator's own answer, times its confidence in it (x judge_skill)."""
    recency: float = Field(default=0.5, ge=0)
    """Logit bonus of the answer shown last (small models follow the most recent answer)."""
    context_tokens: float = Field(default=2000.0, gt=0)
    """Context degradation: judging and self-belief weights shrink by 1 / (1 + L / context_tokens),
    L the tokens of solutions the collaborator reads (the length at which they halve)."""


class Prior(Strict):
    """Ability of an unlisted model from its size: ability = intercept + slope * log2(params_b)."""

    intercept: dict[str, float]
    slope: dict[str, float]
    template: str
    """The card whose non-skill traits (tokens, speed, price, collaboration) a prior card copies."""


class SimCards(Strict):
    """The full set of simulated models plus the shared difficulty and behaviour parameters."""

    version: int = 1
    calibration_seed: int = 0
    generated_by: str = ""
    difficulty: dict[str, BenchDifficulty]
    behaviour: Behaviour
    prior: Prior | None = None
    cards: dict[str, Card]

    def card(self, name: str) -> Card:
        """The card called ``name``, or a size-based prior card for ``prior:<N>B``."""
        if name in self.cards:
            return self.cards[name]
        m = _PRIOR.match(name)
        if m and self.prior is not None:
            size = float(m.group(1))
            template = self.cards[self.prior.template]
            ability = {
                bench: round(self.prior.intercept[bench] + self.prior.slope[bench] * math.log2(size), 4)
                for bench in self.prior.intercept
            }
            return template.model_copy(
                update={
                    "name": name,
                    "params_b": size,
                    "ability": ability,
                    "domain_offsets": {},
                    "targets": {},
                    "notes": f"size prior for a {size:g}B model (not calibrated)",
                }
            )
        known = ", ".join(sorted(self.cards))
        raise KeyError(f"unknown sim card {name!r}; known cards: {known}; or use 'prior:<N>B'")

    def difficulty_of(self, benchmark: str) -> BenchDifficulty:
        """The difficulty structure of a benchmark (``default`` for unknown ones)."""
        return self.difficulty.get(benchmark) or self.difficulty["default"]


def parse_cards(data: dict[str, Any]) -> SimCards:
    """Validate a cards mapping (as read from YAML)."""
    return SimCards.model_validate(data)


@lru_cache(maxsize=4)
def load_cards(path: Path = CARDS_PATH) -> SimCards:
    """Read and validate a cards file (cached per path; the default is the committed ``cards.yaml``)."""
    if not path.exists():
        raise FileNotFoundError(f"sim cards file {str(path)!r} not found; run `slmsim calibrate`")
    with path.open() as fh:
        # libyaml's loader when built in: the same mapping in ~10 ms instead of ~78 (every
        # process that simulates reads the cards once, runner actors included).
        return parse_cards(yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))
