"""The ``sim`` backend: a calibrated simulated LLM behind the ordinary ``Backend`` interface."""

from __future__ import annotations

import asyncio
import math

from actors.backends.sim import roles
from actors.backends.sim.cards import Card, SimCards, load_cards
from actors.backends.sim.skill import normal, text_hash, unit
from actors.backends.sim.text import detect_format
from actors.backends.sim.world import shared_world
from protocols.config import ModelSpec
from protocols.messages import Completion, CompletionRequest, Failure, Problem, Usage

PREFILL_SPEEDUP = 20.0
"""Prompt tokens are processed this many times faster than completion tokens are decoded."""
LATENCY_JITTER_SD = 0.1
"""Sd of the lognormal noise on each call's latency."""


class SimBackend:
    """A simulated model: a pure function of (seed, card, problem, sample index, role, request).

    Args:
        spec: the model spec; ``spec.card_name`` names the card (or ``prior:<N>B``).
        seed: the run seed; a different seed gives different (statistically alike) samples.
        cards: the card set (default: the committed, calibrated ``cards.yaml``).
    """

    def __init__(self, spec: ModelSpec, seed: int, cards: SimCards | None = None) -> None:
        self.spec = spec
        self.seed = seed
        self.cards = cards or load_cards()
        self.card: Card = self.cards.card(spec.card_name)
        self.world = shared_world(self.cards)
        self.price = spec.price or self.card.price
        self._fault_attempts: dict[str, int] = {}

    async def complete(self, request: CompletionRequest) -> Completion | Failure:
        """One simulated completion, or a typed ``Failure`` if a fault was injected."""
        content = request.prompt if request.prompt is not None else "\n".join(m.content for m in request.messages)
        chash = text_hash(content)
        prompt_tokens = max(1, math.ceil(len(content) / 4))
        fault = self._fault(request, chash, prompt_tokens)
        if fault is not None:
            delay = self.spec.timeout_s if fault.error == "timeout" else 0.05
            if self.spec.time_scale > 0:
                await asyncio.sleep(delay * self.spec.time_scale)
            return fault
        completion = self.respond(request, content, chash, prompt_tokens)
        if self.spec.time_scale > 0:
            await asyncio.sleep(completion.latency_s * self.spec.time_scale)
        return completion

    def respond(self, request: CompletionRequest, content: str, chash: str, prompt_tokens: int) -> Completion:
        """The completion for a request (pure and synchronous; ``complete`` adds faults and sleeping)."""
        meta = request.meta
        problem = meta.problem or _anonymous_problem(content, chash)
        facts = self.world.facts(problem)
        temperature = request.temperature
        # T=0 is greedy: the whole completion is a property of (model, problem, request) and
        # depends neither on sample_index nor on the run seed (a real model at T=0 gives the
        # same answer on every run).
        base: tuple[object, ...]
        if temperature == 0:
            base = ("greedy", self.card.name, facts.key)
        else:
            base = (self.seed, self.card.name, facts.key, request.sample_index)
        mal_rate = min(1.0, self.card.malformed_rate + self.spec.faults.malformed)
        key: tuple[object, ...]
        match meta.role:
            case "solver":
                # The solver's draw ignores the prompt wording: a model gets the same problem
                # right or wrong however it is asked (as a tool, few-shot, ...).
                reply = roles.solve(self.world, self.card, facts, temperature, mal_rate, base)
            case "aggregator" | "debater":
                key = (*base, meta.role, chash)
                reply = roles.review(self.world, self.card, facts, temperature, mal_rate, meta, key, base)
            case "verifier":
                reply = roles.verify(self.world, self.card, facts, temperature, meta, (*base, "verifier", chash), base)
            case "agent":
                # Keyed by the transcript (tool answers seen so far), not the run id: the same
                # transcript gets the same reply.
                key = (*base, "agent", chash)
                reply = roles.act(
                    self.world, self.card, facts, temperature, mal_rate, meta, problem.question, key, base
                )
            case "planner" | "caller" | "summarizer":
                reply = roles.tool_role(self.card, meta, (*base, meta.role, chash))
        stats = self.card.tokens_on(facts.benchmark)
        tokens = _lognormal(stats.mean * reply.length_factor, stats.sd * reply.length_factor, *base, meta.role, chash)
        text, finish = reply.text, reply.finish_reason
        if request.max_tokens is not None and tokens > request.max_tokens:
            # Ran out of budget before the final answer: the reply is cut and carries no answer.
            tokens, finish = request.max_tokens, "length"
            text = text.split("\n")[0][: max(1, 4 * request.max_tokens)]
            if "boxed" in text or "Action" in text:
                text = "The reasoning continues"
        decode = self.card.decode_tps
        latency = self.card.ttft_s + prompt_tokens / (decode * PREFILL_SPEEDUP) + tokens / decode
        latency *= math.exp(LATENCY_JITTER_SD * normal("latency", *base, meta.role, chash))
        cost = (prompt_tokens * self.price.input + tokens * self.price.output) / 1e6
        return Completion(
            model=request.model,
            text=text,
            usage=Usage(prompt_tokens=prompt_tokens, completion_tokens=tokens),
            latency_s=round(latency, 4),
            cost_usd=round(cost, 9),
            finish_reason=finish,
            source="sim",
        )

    def _fault(self, request: CompletionRequest, chash: str, prompt_tokens: int) -> Failure | None:
        faults = self.spec.faults
        total = faults.rate_limit + faults.server_error + faults.timeout
        if total <= 0:
            return None
        meta = request.meta
        ident = f"{meta.problem_id}|{meta.role}|{meta.step}|{request.sample_index}|{chash}"
        # A retry of the same request is a new attempt, with a fresh (still deterministic) draw.
        attempt = self._fault_attempts.get(ident, 0)
        u = unit(self.seed, self.card.name, "fault", ident, attempt)
        name = self.spec.name
        failure: Failure | None = None
        if u < faults.rate_limit:
            failure = Failure(
                error="rate_limit",
                message=f"simulated 429 from sim model {name!r}",
                retryable=True,
                model=name,
                retry_after_s=1.0,
            )
        elif u < faults.rate_limit + faults.server_error:
            failure = Failure(
                error="server", message=f"simulated 503 from sim model {name!r}", retryable=True, model=name
            )
        elif u < total:
            failure = Failure(
                error="timeout",
                message=f"simulated timeout after {self.spec.timeout_s:g}s from sim model {name!r}",
                retryable=True,
                model=name,
            )
        if failure is None:
            self._fault_attempts.pop(ident, None)
        else:
            self._fault_attempts[ident] = attempt + 1
        return failure


def _lognormal(mean: float, sd: float, *key: object) -> int:
    """A token count with the given mean and sd (lognormal), at least 1."""
    if sd <= 0:
        return max(1, round(mean))
    sigma2 = math.log(1.0 + (sd / mean) ** 2)
    mu = math.log(mean) - sigma2 / 2.0
    return max(1, round(math.exp(mu + math.sqrt(sigma2) * normal("tokens", *key))))


def _anonymous_problem(content: str, chash: str) -> Problem:
    """A stand-in problem for a request with no ``meta.problem``: its "answer" is a hashed number."""
    fmt = detect_format(content)
    u = unit("anonymous", chash)
    reference = "ABCD"[int(u * 4)] if fmt == "letter" else str(2 + int(u * 998))
    return Problem(
        id=f"anon-{chash}",
        benchmark="unknown",
        question=content[-2000:],
        reference=reference,
        answer_format=fmt,  # type: ignore[arg-type]
    )
