"""Mixture-of-Agents (Wang et al. 2024): proposers answer, later layers refine, an aggregator writes the answer.

Layer 1: every proposer solves the problem. Layers 2..L: every proposer sees the previous
layer's responses (aggregator prompt, role ``aggregator``). Finally the aggregator model
synthesises the last layer's responses. A proposer whose call failed is left out of the
next prompt (its candidate answer is None). The aggregator's reply is the final text,
graded as is; if the aggregator's call fails, the outcome is that failure.
"""

from __future__ import annotations

from typing import Any

from orchestrators.base import Collaborators, Outcome
from orchestrators.prompts import aggregator_messages, solver_messages
from orchestrators.sampling import Extractor, call, call_all, make_request, record
from protocols.config import MoAConfig
from protocols.messages import CallRecord, Completion, CompletionRequest, Failure, Problem


async def moa(problem: Problem, config: MoAConfig, collab: Collaborators) -> Outcome:
    """Run the proposer layers, then the aggregator (see module doc)."""
    extract = Extractor(collab, problem)
    trace: list[CallRecord] = []
    texts: list[str] = []
    answers: tuple[str | None, ...] = ()
    layers: list[list[str | None]] = []
    shown: tuple[str | None, ...]
    for layer in range(config.layers):
        requests: list[CompletionRequest] = []
        for model in config.proposers:
            if layer == 0:
                messages, role, shown = solver_messages(problem), "solver", ()
            else:
                messages, role, shown = aggregator_messages(problem, texts), "aggregator", answers
            requests.append(
                make_request(
                    problem,
                    collab,
                    model,
                    messages,
                    role=role,  # type: ignore[arg-type]
                    temperature=config.temperature,
                    max_tokens=config.max_tokens,
                    sample_index=layer,
                    candidates=shown,
                )
            )
        replies = await call_all(collab, requests)
        trace.extend(record(q, r, f"moa_layer_{layer + 1}") for q, r in zip(requests, replies, strict=True))
        texts = [r.text for r in replies if isinstance(r, Completion)]
        answers = tuple([await extract(r) for r in replies])
        layers.append(list(answers))
    request = make_request(
        problem,
        collab,
        config.aggregator,
        aggregator_messages(problem, texts),
        role="aggregator",
        temperature=config.temperature,
        max_tokens=config.max_tokens,
        candidates=answers,
    )
    reply = await call(collab, request)
    trace.append(record(request, reply, "moa_aggregator"))
    details: dict[str, Any] = {"proposer_answers": layers, "aggregator": config.aggregator}
    if isinstance(reply, Failure):
        return Outcome(final_text=None, trace=tuple(trace), details=details, error=reply)
    answer = await extract(reply)
    details["aggregator_answer"] = answer
    return Outcome(final_text=reply.text, answer=answer, trace=tuple(trace), details=details)
