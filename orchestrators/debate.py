"""LLM-Debate (Du et al. 2023): R rounds; each agent sees all agents' previous-round answers; final majority.

Round 1: every agent solves the problem independently (role ``solver``). Rounds 2..R:
each agent continues its own conversation with a turn showing the other agents'
previous-round solutions (role ``debater``; ``meta.candidates`` = all agents'
previous-round answers, its own included, ``meta.extra["own_answer"]`` its own). An agent
whose call failed in a round keeps its previous answer in the record, and its failure is
in the trace. The final answer is the majority over the last round's answers
(``voting.majority``; abstentions count, never win); a tie goes to the answer held by
more distinct models, then to the answer of the seat listed first in the config (the
vote's "sample index" is the seat; debaters have no validation accuracy to rank them).
"""

from __future__ import annotations

from typing import Any

from orchestrators.base import Collaborators, Outcome
from orchestrators.prompts import debate_followup, solver_messages
from orchestrators.sampling import Extractor, Sample, call_all, decided, make_request, record
from orchestrators.voting import Vote, majority
from protocols.config import DebateConfig
from protocols.messages import CallRecord, ChatMessage, Completion, CompletionRequest, Problem


async def debate(problem: Problem, config: DebateConfig, collab: Collaborators) -> Outcome:
    """Run the rounds, then vote over the last round (see module doc)."""
    extract = Extractor(collab, problem)
    # Agents are positions, so the same model may sit at the table twice.
    agents = list(config.models)
    history: list[tuple[ChatMessage, ...]] = [solver_messages(problem) for _ in agents]
    current: list[Sample] = []
    trace: list[CallRecord] = []
    rounds: list[list[str | None]] = []
    shown: tuple[str | None, ...]
    for rnd in range(config.rounds):
        requests: list[CompletionRequest] = []
        for i, model in enumerate(agents):
            if rnd == 0:
                messages, role, shown, extra = history[i], "solver", (), {}
            else:
                others = [s.text for j, s in enumerate(current) if j != i and s.text is not None]
                messages = (*history[i], debate_followup(problem, others))
                shown = tuple(s.answer for s in current)
                role, extra = "debater", {"own_answer": current[i].answer, "round": rnd + 1}
            history[i] = messages
            requests.append(
                make_request(
                    problem,
                    collab,
                    model,
                    messages,
                    role=role,  # type: ignore[arg-type]
                    temperature=config.temperature,
                    max_tokens=config.max_tokens,
                    # Distinct per agent seat and round, so two seats of one model draw independently.
                    sample_index=rnd * len(agents) + i,
                    candidates=shown,
                    extra=extra,
                )
            )
        replies = await call_all(collab, requests)
        trace.extend(record(q, r, f"debate_round_{rnd + 1}") for q, r in zip(requests, replies, strict=True))
        new: list[Sample] = []
        for i, (request, reply) in enumerate(zip(requests, replies, strict=True)):
            if isinstance(reply, Completion):
                history[i] = (*history[i], ChatMessage(role="assistant", content=reply.text))
                new.append(Sample(request.model, request.sample_index, reply, await extract(reply)))
            elif current:
                new.append(current[i])  # a failed turn: the agent stands by its previous answer
            else:
                new.append(Sample(request.model, request.sample_index, reply, None))
        current = new
        rounds.append([s.answer for s in current])
    groups = await extract.group([s.answer for s in current])
    vote = majority([Vote(lab, s.model, i) for i, (lab, s) in enumerate(zip(groups.labels, current, strict=True))])
    details: dict[str, Any] = {"rounds": rounds, "tie_break": vote.tie_break, "votes": vote.top, "n": vote.n}
    if vote.label is None:
        return decided(current, trace, details, None, "debate")
    chosen = next(s for s, lab in zip(current, groups.labels, strict=True) if lab == vote.label)
    details["chosen_model"] = chosen.model
    return decided(current, trace, details, chosen, "debate")
