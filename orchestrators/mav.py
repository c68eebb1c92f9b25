"""Multi-Agent Verification (Lifshitz et al. 2025): proposers' candidates, every verifier votes on each.

Each proposer draws k samples (role ``solver``). Every candidate with an extractable
answer goes to every verifier (role ``verifier``, ``meta.target`` = the candidate's
answer), whose reply must end with the line ``Verdict: CORRECT`` or ``Verdict: INCORRECT``;
anything else (or a failed call) is an abstention and approves nothing. The candidate
with the most approvals wins; ties go to the first candidate in generation order
(proposers as listed, then ``sample_index``), as BoN-MAV's reference code does
(``max`` over solution indices in ``src/utils/eval_utils.py`` of
Shalev-Lifshitz/MultiAgentVerification: no vote among the answers, no model ranking).
Candidates without an answer are not sent to verifiers (they cannot win).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from orchestrators.base import Collaborators, Outcome
from orchestrators.prompts import Verdict, parse_verdict, verifier_messages
from orchestrators.sampling import Sample, call_all, decided, draw_grouped, make_request, record
from orchestrators.voting import break_tie
from protocols.config import MavConfig
from protocols.messages import Completion, Problem


class Candidate(NamedTuple):
    """A proposer's sample under review, its answer class and the verifiers' verdicts."""

    sample: Sample
    label: int
    verdicts: tuple[Verdict | None, ...]

    @property
    def approvals(self) -> int:
        return sum(v == "correct" for v in self.verdicts)


def mav_select(candidates: list[Candidate]) -> tuple[Candidate, str]:
    """The most-approved candidate and the rule that decided (see module doc)."""
    order = {id(c): i for i, c in enumerate(candidates)}
    return break_tie(
        candidates,
        [
            ("none", lambda c: -c.approvals),  # decided by approvals alone: no tie
            ("generation_order", lambda c: order[id(c)]),
        ],
    )


async def mav(problem: Problem, config: MavConfig, collab: Collaborators) -> Outcome:
    """Draw candidates, collect every verifier's verdict on each, pick the most approved."""
    drawn, _ = await draw_grouped(
        problem,
        collab,
        config.proposers,
        config.k,
        temperature=config.temperature,
        max_tokens=config.max_tokens,
        label="mav_proposer",
    )
    samples, trace = drawn.samples, drawn.trace
    answered = [(s, lab) for s, lab in zip(samples, drawn.labels, strict=True) if lab is not None]
    requests = [
        make_request(
            problem,
            collab,
            verifier,
            verifier_messages(problem, s.text or "", s.answer or ""),
            role="verifier",
            temperature=config.temperature,
            max_tokens=config.max_tokens,
            sample_index=c,
            target=s.answer,
            extra={"proposer": s.model, "proposer_sample_index": s.sample_index},
        )
        for c, (s, _) in enumerate(answered)
        for verifier in config.verifiers
    ]
    replies = await call_all(collab, requests)
    trace.extend(record(q, r, "mav_verifier") for q, r in zip(requests, replies, strict=True))
    verdicts = [parse_verdict(r.text) if isinstance(r, Completion) else None for r in replies]
    n_ver = len(config.verifiers)
    candidates = [
        Candidate(s, lab, tuple(verdicts[c * n_ver : (c + 1) * n_ver])) for c, (s, lab) in enumerate(answered)
    ]
    details: dict[str, Any] = {
        "candidates": [
            {
                "model": c.sample.model,
                "sample_index": c.sample.sample_index,
                "answer": c.sample.answer,
                "verdicts": list(c.verdicts),
                "approvals": c.approvals,
            }
            for c in candidates
        ],
        "verifiers": list(config.verifiers),
    }
    if not candidates:
        return decided(samples, trace, details, None, "mav")
    best, rule = mav_select(candidates) if len(candidates) > 1 else (candidates[0], "none")
    details.update(chosen_model=best.sample.model, approvals=best.approvals, tie_break=rule)
    return decided(samples, trace, details, best.sample, "mav")
