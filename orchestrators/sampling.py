"""Drawing samples from models and recording every call, shared by the SLM-MUX family.

A sample is one call's reply plus the answer extracted from it. Calls fan out with
``asyncio.TaskGroup`` but the trace is always written in (model, sample index) order,
so a run's results file does not depend on which reply happened to arrive first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestrators.base import Collaborators, Outcome
from orchestrators.prompts import FEW_SHOT_STOP, few_shot_prompt, solver_messages
from orchestrators.voting import AnswerGroups, group_answers
from protocols.messages import (
    CallRecord,
    ChatMessage,
    Completion,
    CompletionRequest,
    Failure,
    Problem,
    RequestMeta,
    Role,
    TraceEvent,
)


@dataclass(frozen=True)
class Sample:
    """One model call's reply and the answer extracted from it (None: abstention)."""

    model: str
    sample_index: int
    reply: Completion | Failure
    answer: str | None

    @property
    def text(self) -> str | None:
        return self.reply.text if isinstance(self.reply, Completion) else None


@dataclass
class Extractor:
    """Extracts answers with the grader, once per distinct text (one instance per problem)."""

    collab: Collaborators
    problem: Problem
    _cache: dict[str, str | None] = field(default_factory=dict)

    async def __call__(self, reply: Completion | Failure) -> str | None:
        if not isinstance(reply, Completion):
            return None
        if reply.text not in self._cache:
            self._cache[reply.text] = await self.collab.grader.extract(self.problem, reply.text)
        return self._cache[reply.text]

    async def group(self, answers: Sequence[str | None]) -> AnswerGroups:
        """Group answers by the grader's equivalence for this problem."""

        async def equivalent(a: str, b: str) -> bool:
            return await self.collab.grader.equivalent(self.problem, a, b)

        return await group_answers(answers, equivalent)


def make_request(
    problem: Problem,
    collab: Collaborators,
    model: str,
    messages: tuple[ChatMessage, ...],
    *,
    role: Role = "solver",
    temperature: float,
    max_tokens: int | None,
    sample_index: int = 0,
    candidates: tuple[str | None, ...] = (),
    target: str | None = None,
    extra: dict[str, Any] | None = None,
    prompt: str | None = None,
    stop: tuple[str, ...] = (),
) -> CompletionRequest:
    """A chat request (or, with ``prompt``, a plain completions one) with the ``RequestMeta`` the simulator needs."""
    return CompletionRequest(
        model=model,
        messages=() if prompt is not None else messages,
        prompt=prompt,
        stop=stop,
        temperature=temperature,
        max_tokens=max_tokens,
        seed=collab.seed,
        sample_index=sample_index,
        meta=RequestMeta(
            problem_id=problem.id,
            run_id=collab.run_id,
            role=role,
            problem=problem,
            candidates=candidates,
            target=target,
            extra=extra or {},
        ),
    )


async def call(collab: Collaborators, request: CompletionRequest) -> Completion | Failure:
    """One call to the named model; an unknown model name is a bug in the config, so it raises."""
    model = collab.models.get(request.model)
    if model is None:
        raise KeyError(f"unknown model {request.model!r}; known: {sorted(collab.models)}")
    return await model.complete(request)


async def call_all(collab: Collaborators, requests: Sequence[CompletionRequest]) -> list[Completion | Failure]:
    """Send all requests concurrently; replies come back in request order."""
    replies: list[Completion | Failure | None] = [None] * len(requests)

    async def one(i: int, request: CompletionRequest) -> None:
        replies[i] = await call(collab, request)

    async with asyncio.TaskGroup() as group:
        for i, request in enumerate(requests):
            group.create_task(one(i, request))
    return [r for r in replies if r is not None]


def record(request: CompletionRequest, reply: Completion | Failure, label: str = "") -> CallRecord:
    """The trace entry of one call."""
    return CallRecord(
        model=request.model, role=request.meta.role, sample_index=request.sample_index, label=label, reply=reply
    )


async def draw_samples(
    problem: Problem,
    collab: Collaborators,
    models: Sequence[str],
    k: int,
    *,
    temperature: float,
    max_tokens: int | None,
    extract: Extractor | None = None,
    label: str = "sample",
    few_shot: int | None = None,
) -> tuple[list[Sample], list[CallRecord]]:
    """k independent solver samples from each model (sample_index 0..k-1), in (model, index) order.

    With ``extract=None`` the answers are left unextracted (None), for callers that hand
    the texts to a judge which extracts them itself. ``few_shot=n``: a plain completions
    prompt with n worked examples instead of the chat prompt (for base models).
    """
    prompt = few_shot_prompt(problem, few_shot) if few_shot is not None else None
    requests = [
        make_request(
            problem,
            collab,
            model,
            solver_messages(problem),
            temperature=temperature,
            max_tokens=max_tokens,
            sample_index=i,
            prompt=prompt,
            stop=FEW_SHOT_STOP if prompt is not None else (),
        )
        for model in models
        for i in range(k)
    ]
    replies = await call_all(collab, requests)
    samples = []
    for request, reply in zip(requests, replies, strict=True):
        answer = await extract(reply) if extract is not None else None
        samples.append(Sample(request.model, request.sample_index, reply, answer))
    return samples, [record(q, r, label) for q, r in zip(requests, replies, strict=True)]


@dataclass(frozen=True)
class Grouped:
    """Samples with their answers extracted and grouped into classes of equivalent answers."""

    samples: list[Sample]
    trace: list[CallRecord]
    labels: tuple[int | None, ...]


async def draw_grouped(
    problem: Problem,
    collab: Collaborators,
    models: Sequence[str],
    k: int,
    *,
    temperature: float,
    max_tokens: int | None,
    label: str,
    few_shot: int | None = None,
) -> tuple[Grouped, Extractor]:
    """``draw_samples`` with answers extracted, then grouped by the grader's equivalence (label per sample)."""
    extract = Extractor(collab, problem)
    samples, trace = await draw_samples(
        problem,
        collab,
        models,
        k,
        temperature=temperature,
        max_tokens=max_tokens,
        extract=extract,
        label=label,
        few_shot=few_shot,
    )
    groups = await extract.group([s.answer for s in samples])
    return Grouped(samples, trace, groups.labels), extract


def decided(
    samples: Sequence[Sample],
    trace: Sequence[TraceEvent],
    details: dict[str, Any],
    chosen: Sample | None,
    what: str,
    answer: str | None = None,
) -> Outcome:
    """The outcome of a decision over samples: the chosen sample's text, or ``no_answer`` when none was chosen.

    ``answer`` is the decision's own reading of the winner (default: the chosen sample's answer).
    """
    if chosen is None:
        return Outcome(final_text=None, trace=tuple(trace), details=details, error=no_answer(samples, what))
    return Outcome(
        final_text=chosen.text,
        answer=answer if answer is not None else chosen.answer,
        trace=tuple(trace),
        details=details,
    )


def no_answer(samples: Sequence[Sample], what: str) -> Failure:
    """The error of an outcome where no sample produced a usable answer."""
    failed = [s for s in samples if isinstance(s.reply, Failure)]
    if failed and len(failed) == len(samples):
        first = failed[0].reply
        assert isinstance(first, Failure)
        return Failure(error=first.error, message=f"{what}: all {len(samples)} calls failed; first: {first.message}")
    return Failure(
        error="malformed",
        message=f"{what}: none of {len(samples)} samples had an extractable answer ({len(failed)} failed calls)",
    )
