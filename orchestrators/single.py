"""Single-model baselines: one greedy sample, and self-consistency (k samples, majority vote)."""

from __future__ import annotations

from orchestrators.base import Collaborators, Outcome
from orchestrators.prompts import FEW_SHOT_STOP, few_shot_prompt, solver_messages
from orchestrators.sampling import Extractor, call, decided, draw_grouped, record
from orchestrators.voting import Vote, majority
from protocols.config import SelfConsistencyConfig, SingleConfig
from protocols.messages import CompletionRequest, Failure, Problem, RequestMeta


def _single_request(problem: Problem, config: SingleConfig, collab: Collaborators) -> CompletionRequest:
    meta = RequestMeta(problem_id=problem.id, run_id=collab.run_id, role="solver", problem=problem)
    if config.prompt_style == "few_shot":
        return CompletionRequest(
            model=config.model,
            prompt=few_shot_prompt(problem, config.shots),
            stop=FEW_SHOT_STOP,
            temperature=config.temperature,
            max_tokens=config.max_tokens,
            seed=collab.seed,
            meta=meta,
        )
    return CompletionRequest(
        model=config.model,
        messages=solver_messages(problem),
        temperature=config.temperature,
        max_tokens=config.max_tokens,
        seed=collab.seed,
        meta=meta,
    )


async def single(problem: Problem, config: SingleConfig, collab: Collaborators) -> Outcome:
    """Ask one model once (T=0 by default); its reply is the answer, even if it holds none."""
    request = _single_request(problem, config, collab)
    reply = await call(collab, request)
    trace = (record(request, reply, "single"),)
    if isinstance(reply, Failure):
        return Outcome(final_text=None, trace=trace, error=reply)
    answer = await Extractor(collab, problem)(reply)
    return Outcome(
        final_text=reply.text,
        answer=answer,
        trace=trace,
        details={"model": config.model, "prompt_style": config.prompt_style},
    )


async def self_consistency(problem: Problem, config: SelfConsistencyConfig, collab: Collaborators) -> Outcome:
    """k samples from one model; the most frequent (equivalent) answer wins; abstentions count in k."""
    drawn, _ = await draw_grouped(
        problem,
        collab,
        [config.model],
        config.k,
        temperature=config.temperature,
        max_tokens=config.max_tokens,
        label="self_consistency",
        few_shot=config.shots if config.prompt_style == "few_shot" else None,
    )
    samples, labels = drawn.samples, drawn.labels
    vote = majority([Vote(lab, s.model, s.sample_index) for lab, s in zip(labels, samples, strict=True)])
    details = {
        "model": config.model,
        "k": config.k,
        "answers": [s.answer for s in samples],
        "labels": list(labels),
        "confidence": vote.top / vote.n if vote.n else 0.0,
        "tie_break": vote.tie_break,
    }
    if vote.label is None:
        return decided(samples, drawn.trace, details, None, "self_consistency")
    chosen = next(s for s, lab in zip(samples, labels, strict=True) if lab == vote.label)
    return decided(samples, drawn.trace, details, chosen, "self_consistency")
