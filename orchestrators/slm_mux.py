"""SLM-MUX (arXiv 2510.05077): each model draws k samples; the most self-consistent model answers.

A model's confidence is the frequency of its own most common answer among its k samples
(answers compared by the grader's mathematical equivalence; an abstention — no
extractable answer or a failed call — still counts in k). The most confident model's
answer wins; ties go to the higher validation accuracy, then to the rules documented in
``orchestrators.voting``.

The decision lives in ``MuxJudge``, a plain class. By default it runs where the
orchestrator runs (a runner actor), over ``collab.grader``: extraction is a regex, and
the CPU-heavy symbolic equivalence checks already go to that grader's worker pool, so
a separate judge process would only add a Ray hop a problem and a single process that
every runner waits on. A judge passed as ``collab.extras["mux_judge"]`` (anything with
a ``select``, sync or async, e.g. ``actors.handles.RemoteJudge`` over an actor) is used
instead.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from orchestrators.base import Collaborators, Outcome
from orchestrators.sampling import decided, draw_samples
from orchestrators.voting import MuxTieBreak, group_answers, label_support, model_vote, mux_select
from protocols.config import SlmMuxConfig
from protocols.interfaces import Grader
from protocols.messages import Frozen, Problem

MUX_JUDGE = "mux_judge"
"""The ``Collaborators.extras`` key of the judge (a ``MuxJudge``, or ``actors.handles.RemoteJudge`` over its actor)."""


class JudgeSample(Frozen):
    """One sample as the judge sees it: who drew it, which draw, and its text (None: failed call)."""

    model: str
    sample_index: int
    text: str | None


class ModelOffer(Frozen):
    """A model's most common answer, how many of its k samples gave it, and its first draw."""

    model: str
    answer: str | None
    top: int
    k: int
    confidence: float
    first_index: int


class MuxVerdict(Frozen):
    """The judge's decision with everything it was based on."""

    chosen_model: str | None
    answer: str | None
    sample_index: int | None
    """The chosen model's first draw of the winning answer; its text is the final text."""
    confidence: float
    tie_break: MuxTieBreak
    tied_models: tuple[str, ...] = ()
    offers: tuple[ModelOffer, ...] = ()
    answers: tuple[str | None, ...] = ()
    """Per input sample, in input order: the extracted answer."""
    labels: tuple[int | None, ...] = ()
    """Per input sample: its equivalence class over all models (None: abstention)."""


class MuxJudge:
    """Selects among models' samples by self-consistency confidence (SLM-MUX).

    Give it either one ``grader`` (in-process use) or a ``grader_for(answer_format)``
    factory such as ``datasets.grader_for`` (a module-level function, so it pickles by
    reference into the actor process, where the graders are built on first use).
    """

    def __init__(self, grader: Grader | None = None, *, grader_for: Callable[[str], Grader] | None = None) -> None:
        self.grader = grader
        self.grader_for = grader_for
        self._graders: dict[str, Grader] = {}

    def _grader(self, problem: Problem) -> Grader:
        if self.grader is not None:
            return self.grader
        if self.grader_for is None:
            raise TypeError("MuxJudge needs a grader or grader_for=datasets.grader_for; it was given neither")
        fmt = problem.answer_format
        if fmt not in self._graders:
            self._graders[fmt] = self.grader_for(fmt)
        return self._graders[fmt]

    async def select(
        self,
        problem: Problem,
        samples: Sequence[JudgeSample],
        validation_accuracy: Mapping[str, float] | None = None,
    ) -> MuxVerdict:
        """Extract and group every sample's answer, then apply ``voting.mux_select``."""
        grader = self._grader(problem)
        cache: dict[str, str | None] = {}
        answers: list[str | None] = []
        for sample in samples:
            if sample.text is None:
                answers.append(None)
                continue
            if sample.text not in cache:
                cache[sample.text] = await grader.extract(problem, sample.text)
            answers.append(cache[sample.text])

        async def equivalent(a: str, b: str) -> bool:
            return await grader.equivalent(problem, a, b)

        groups = await group_answers(answers, equivalent)
        by_model: dict[str, list[tuple[int, int | None]]] = {}
        for sample, label in zip(samples, groups.labels, strict=True):
            by_model.setdefault(sample.model, []).append((sample.sample_index, label))
        votes = []
        for model, pairs in by_model.items():
            ordered = [label for _, label in sorted(pairs, key=lambda p: p[0])]
            vote = model_vote(model, ordered)
            # model_vote indexes by position; map the position back to the real sample index.
            votes.append(vote._replace(first_index=sorted(i for i, _ in pairs)[vote.first_index]))
        choice = mux_select(votes, validation_accuracy, label_support(groups.labels))
        offers = tuple(
            ModelOffer(
                model=v.model,
                answer=groups.representatives[v.label] if v.label is not None else None,
                top=v.top,
                k=v.k,
                confidence=v.confidence,
                first_index=v.first_index,
            )
            for v in votes
        )
        chosen = next((v for v in votes if v.model == choice.model), None)
        index = chosen.first_index if chosen is not None else None
        # The chosen sample's own written answer, not the class representative (another model's wording).
        answer = next(
            (a for s, a in zip(samples, answers, strict=True) if (s.model, s.sample_index) == (choice.model, index)),
            None,
        )
        return MuxVerdict(
            chosen_model=choice.model,
            answer=answer,
            sample_index=index,
            confidence=choice.confidence,
            tie_break=choice.tie_break,
            tied_models=choice.tied_models,
            offers=offers,
            answers=tuple(answers),
            labels=groups.labels,
        )


async def ask_judge(judge: Any, *args: Any) -> MuxVerdict:
    """Call ``select`` on the judge: a plain ``MuxJudge``, or a facade over its actor whose ``select`` is async."""
    result = judge.select(*args)
    verdict = await result if inspect.isawaitable(result) else result
    if not isinstance(verdict, MuxVerdict):
        raise TypeError(f"mux judge returned {type(verdict).__name__!r}, expected MuxVerdict")
    return verdict


async def slm_mux(problem: Problem, config: SlmMuxConfig, collab: Collaborators) -> Outcome:
    """Draw k samples per model, let the judge pick the most confident model, return its sample."""
    samples, trace = await draw_samples(
        problem,
        collab,
        config.models,
        config.k,
        temperature=config.temperature,
        max_tokens=config.max_tokens,
        extract=None,
        label="slm_mux",
    )
    judge = collab.extras.get(MUX_JUDGE) or MuxJudge(collab.grader)
    shown = [JudgeSample(model=s.model, sample_index=s.sample_index, text=s.text) for s in samples]
    verdict = await ask_judge(judge, problem, shown, dict(config.validation_accuracy))
    details: dict[str, Any] = {
        "k": config.k,
        "chosen_model": verdict.chosen_model,
        "confidence": verdict.confidence,
        "tie_break": verdict.tie_break,
        "tied_models": list(verdict.tied_models),
        "per_model": {
            o.model: {"answer": o.answer, "confidence": o.confidence, "top": o.top, "k": o.k} for o in verdict.offers
        },
        "answers": list(verdict.answers),
        "validation_accuracy": dict(config.validation_accuracy),
    }
    if verdict.chosen_model is None:
        return decided(samples, trace, details, None, "slm_mux")
    chosen = next(s for s in samples if s.model == verdict.chosen_model and s.sample_index == verdict.sample_index)
    return decided(samples, trace, details, chosen, "slm_mux", answer=verdict.answer)
