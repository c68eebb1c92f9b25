"""Pure decision rules over grouped answers: grouping, majority, confidence, the SLM-MUX choice.

Everything here works on *labels*: each sample's answer is mapped once to the index of
its equivalence class (``None`` = abstention: no extractable answer, or a failed call).
Scoring (is a label correct?) happens elsewhere; these functions only decide.

Tie rules are explicit and reported, never an accident of list order:

* ``majority``: more votes; then more distinct models behind the answer; then the
  answer with the earliest draw (lowest ``sample_index`` — draws are i.i.d., so this is
  a seeded random choice, not a preference for config order); then the alphabetically
  first model name among those earliest draws — or, when the caller passes a ``salt``
  (Agent Forest does: run seed and problem id), a seeded uniform draw among the tied
  answers, so no model is favoured for its name.
* ``mux_select``: higher confidence; then higher validation accuracy (models without a
  figure rank below models with one); then more support for the model's answer across
  all models' samples; then the alphabetically first model name.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal, NamedTuple, TypeVar

Label = int | None
MajorityTieBreak = Literal["none", "all_invalid", "more_models", "earliest_sample", "model_name", "seeded_draw"]
MuxTieBreak = Literal["none", "all_invalid", "validation_accuracy", "cross_model_support", "model_name"]
_T = TypeVar("_T")
_R = TypeVar("_R", bound=str)


class AnswerGroups(NamedTuple):
    """Equivalence classes of a list of answers: a label per answer and one representative per class."""

    labels: tuple[Label, ...]
    representatives: tuple[str, ...]


async def group_answers(
    answers: Sequence[str | None], equivalent: Callable[[str, str], Awaitable[bool]]
) -> AnswerGroups:
    """Label equivalent answers alike; ``None`` or blank answers are abstentions (label None).

    Identical strings share a label without asking ``equivalent`` (the fast path: graders
    return canonical forms); a new distinct string is compared once with each existing
    class representative, so the grader sees at most distinct x classes pairs.
    """
    reps: list[str] = []
    by_text: dict[str, int] = {}
    labels: list[Label] = []
    for raw in answers:
        answer = raw.strip() if raw is not None else ""
        if not answer:
            labels.append(None)
            continue
        if answer not in by_text:
            found: Label = None
            for index, rep in enumerate(reps):
                if await equivalent(rep, answer):
                    found = index
                    break
            if found is None:
                reps.append(answer)
                found = len(reps) - 1
            by_text[answer] = found
        labels.append(by_text[answer])
    return AnswerGroups(tuple(labels), tuple(reps))


class Vote(NamedTuple):
    """One sample's labelled answer, who drew it and which draw it was."""

    label: Label
    model: str
    sample_index: int


class Majority(NamedTuple):
    """The winning label, how many votes it got, the number of votes (abstentions included), the rule used."""

    label: Label
    top: int
    n: int
    tie_break: MajorityTieBreak
    tied: tuple[int, ...] = ()


def majority(votes: Sequence[Vote], salt: str | None = None) -> Majority:
    """Plurality over labelled votes; abstentions count in ``n`` but never win (see module doc for ties).

    ``salt`` replaces the last tie rule (model name) with a seeded uniform draw keyed by it.
    """
    by_label: dict[int, list[Vote]] = {}
    for vote in votes:
        if vote.label is not None:
            by_label.setdefault(vote.label, []).append(vote)
    if not by_label:
        return Majority(None, 0, len(votes), "all_invalid")
    top = max(len(v) for v in by_label.values())
    tied = sorted(label for label, v in by_label.items() if len(v) == top)
    if len(tied) == 1:
        return Majority(tied[0], top, len(votes), "none")

    def earliest(label: int) -> tuple[int, str]:
        return min((v.sample_index, v.model) for v in by_label[label])

    rules: list[tuple[MajorityTieBreak, Callable[[int], Any]]] = [
        ("more_models", lambda lab: -len({v.model for v in by_label[lab]})),
        ("earliest_sample", lambda lab: earliest(lab)[0]),
    ]
    if salt is None:
        rules.append(("model_name", lambda lab: earliest(lab)[1]))
    else:
        rules.append(("seeded_draw", lambda lab: seeded_rank(salt, earliest(lab)[1])))
    winner, rule = break_tie(tied, rules)
    return Majority(winner, top, len(votes), rule, tuple(tied))


def seeded_rank(salt: str, name: str) -> bytes:
    """A stable pseudo-random rank of ``name`` under ``salt`` (blake2b): a fair, replayable draw."""
    return hashlib.blake2b(f"{salt}\x1f{name}".encode(), digest_size=8).digest()


def break_tie(candidates: list[_T], rules: list[tuple[_R, Callable[[_T], Any]]]) -> tuple[_T, _R]:
    """Apply ``(name, key)`` rules in order (smaller key wins) until one candidate is left.

    Returns the winner and the name of the rule that decided; the last rule must tell
    every remaining pair apart, else this raises (a bug in the caller's rules).
    """
    remaining = candidates
    for name, key in rules:
        best = min(key(c) for c in remaining)
        remaining = [c for c in remaining if key(c) == best]
        if len(remaining) == 1:
            return remaining[0], name
    raise ValueError(f"tie rules left {len(remaining)} candidates: {remaining!r}")


def confidence(labels: Sequence[Label]) -> float:
    """Frequency of the most common answer among ``labels``; abstentions count in the denominator."""
    counts: dict[int, int] = {}
    for label in labels:
        if label is not None:
            counts[label] = counts.get(label, 0) + 1
    return max(counts.values()) / len(labels) if counts else 0.0


class ModelVote(NamedTuple):
    """One model's offer under SLM-MUX: its most common answer and how often it drew it out of k."""

    model: str
    label: Label
    top: int
    """How many of the model's k samples gave ``label``."""
    k: int
    first_index: int = 0
    """The sample index of the model's first draw of ``label`` (whose text is shown as the answer)."""

    @property
    def confidence(self) -> float:
        return self.top / self.k if self.k else 0.0


def model_vote(model: str, labels: Sequence[Label]) -> ModelVote:
    """A model's offer from its k labelled samples (position = sample index); ties go to the earliest draw."""
    result = majority([Vote(label, model, i) for i, label in enumerate(labels)])
    first = labels.index(result.label) if result.label is not None else 0
    return ModelVote(model, result.label, result.top, len(labels), first)


class MuxChoice(NamedTuple):
    """The SLM-MUX decision: which model answers, with which label, and why."""

    model: str | None
    label: Label
    confidence: float
    tie_break: MuxTieBreak
    tied_models: tuple[str, ...] = ()


def mux_select(
    votes: Sequence[ModelVote],
    validation_accuracy: Mapping[str, float] | None = None,
    support: Mapping[int, int] | None = None,
) -> MuxChoice:
    """Pick the most confident model's answer (see module doc for the tie rules).

    Args:
        votes: one offer per model; a model whose k samples all abstained cannot win.
        validation_accuracy: per-model accuracy on a validation split (never the test split).
        support: per label, the number of samples (over all models) with that answer.
    """
    eligible = [v for v in votes if v.label is not None and v.top > 0]
    if not eligible:
        return MuxChoice(None, None, 0.0, "all_invalid")
    best = max(v.confidence for v in eligible)
    tied = sorted((v for v in eligible if v.confidence == best), key=lambda v: v.model)
    if len(tied) == 1:
        return MuxChoice(tied[0].model, tied[0].label, best, "none")
    val = validation_accuracy or {}
    sup = support or {}
    rules: list[tuple[MuxTieBreak, Callable[[ModelVote], Any]]] = [
        ("validation_accuracy", lambda v: -val.get(v.model, -1.0)),
        ("cross_model_support", lambda v: -sup.get(v.label, 0) if v.label is not None else 0),
        ("model_name", lambda v: v.model),
    ]
    winner, rule = break_tie(tied, rules)
    return MuxChoice(winner.model, winner.label, best, rule, tuple(v.model for v in tied))


def label_support(labels: Sequence[Label]) -> dict[int, int]:
    """How many samples carry each label (abstentions left out)."""
    counts: dict[int, int] = {}
    for label in labels:
        if label is not None:
            counts[label] = counts.get(label, 0) + 1
    return counts
