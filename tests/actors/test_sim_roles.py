"""Collaborator behaviours of simulated models: agent, verifier, aggregator/judge, debater, alpha-UMi roles."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from actors.backends.sim import SimBackend, load_cards
from actors.backends.sim.answers import same_answer
from actors.backends.sim.world import World
from datasets import grader_for
from datasets.math500 import load_math500
from orchestrators.react import ReactAction, ReactFinal, ReactMalformed, parse_react
from protocols.config import FaultSpec, ModelSpec
from protocols.messages import ChatMessage, Completion, CompletionRequest, Problem, RequestMeta, Role


@pytest.fixture(scope="module")
def problems(shared_datasets: Path) -> list[Problem]:
    return load_math500(shared_datasets / "math500" / "test.jsonl")[:200]


def req(model: str, problem: Problem, role: Role, *, i: int = 0, **meta: Any) -> CompletionRequest:
    return CompletionRequest(
        model=model,
        messages=(ChatMessage(role="user", content=f"{role} {i} {problem.question}"),),
        temperature=0.0,
        meta=RequestMeta(problem_id=problem.id, role=role, problem=problem, **meta),
    )


def a_wrong_answer(problem: Problem) -> str:
    facts = World(load_cards()).facts(problem)
    return facts.shared_wrong[0]


async def reply_text(backend: SimBackend, request: CompletionRequest) -> str:
    reply = await backend.complete(request)
    assert isinstance(reply, Completion) and reply.source == "sim"
    return reply.text


async def test_agent_calls_every_tool_then_answers(problems: list[Problem]) -> None:
    backend = SimBackend(ModelSpec(name="Qwen2.5-7B-Instruct"), seed=0)
    tools = ("Llama_0", "Gemma_0", "Agent_1")
    grader = grader_for("boxed")
    for p in problems[:20]:
        called: list[str] = []
        candidates: list[str | None] = []
        for step in range(12):
            meta: dict[str, Any] = {
                "tools": tools,
                "tools_called": tuple(called),
                "candidates": tuple(candidates),
                "step": step,
            }
            parsed = parse_react(await reply_text(backend, req("Qwen2.5-7B-Instruct", p, "agent", **meta)))
            if isinstance(parsed, ReactAction):
                assert parsed.tool not in called and parsed.tool in tools
                assert parsed.query == p.question
                called.append(parsed.tool)
                candidates.append(p.reference)
            elif isinstance(parsed, ReactMalformed):
                continue  # the card's malformed rate: the loop answers with a format error
            else:
                assert isinstance(parsed, ReactFinal)
                assert called == list(tools)
                assert await grader.extract(p, parsed.text) is not None
                break
        else:
            pytest.fail("agent never gave a Final Answer")


async def test_agent_malformed_actions_follow_the_malformed_rate(problems: list[Problem]) -> None:
    backend = SimBackend(ModelSpec(name="Qwen2.5-7B-Instruct", faults=FaultSpec(malformed=1.0)), seed=0)
    text = await reply_text(backend, req("Qwen2.5-7B-Instruct", problems[0], "agent", tools=("T",)))
    assert isinstance(parse_react(text), ReactMalformed)


@pytest.mark.parametrize("model", ["Llama-3.1-8B-Instruct", "Gemini-2.0-Flash"])
async def test_verifier_ends_with_an_exact_verdict_line(problems: list[Problem], model: str) -> None:
    backend = SimBackend(ModelSpec(name=model), seed=0)
    for p in problems[:30]:
        for target in (p.reference, a_wrong_answer(p)):
            last = (await reply_text(backend, req(model, p, "verifier", target=target))).splitlines()[-1]
            assert last in ("Verdict: CORRECT", "Verdict: INCORRECT")


async def acceptance(model: str, problems: list[Problem], wrong: bool) -> float:
    backend = SimBackend(ModelSpec(name=model), seed=0)
    accepted = 0
    for p in problems:
        target = a_wrong_answer(p) if wrong else p.reference
        text = await reply_text(backend, req(model, p, "verifier", target=target))
        accepted += text.endswith("Verdict: CORRECT")
    return accepted / len(problems)


async def test_strong_verifiers_reject_wrong_answers_weak_ones_accept_them(problems: list[Problem]) -> None:
    weak_wrong = await acceptance("Mixtral-8x7B-Instruct", problems, wrong=True)
    strong_wrong = await acceptance("Gemini-2.0-Flash", problems, wrong=True)
    strong_right = await acceptance("Gemini-2.0-Flash", problems, wrong=False)
    assert strong_right > 0.8
    assert strong_wrong < weak_wrong
    assert weak_wrong > 0.4  # small models are biased toward accepting


async def follow_rate(model: str, problems: list[Problem], role: Role) -> tuple[float, float]:
    """(share of replies that follow a wrong 2-of-3 majority, share that give the right answer)."""
    backend = SimBackend(ModelSpec(name=model), seed=0)
    grader = grader_for("boxed")
    follow = right = 0
    for p in problems:
        w = a_wrong_answer(p)
        text = await reply_text(backend, req(model, p, role, candidates=(w, p.reference, w)))
        got = await grader.extract(p, text)
        follow += same_answer(got, w)
        right += same_answer(got, p.reference)
    return follow / len(problems), right / len(problems)


@pytest.mark.parametrize("role", ["aggregator", "debater"])
async def test_weak_collaborators_conform_to_a_wrong_majority_more(problems: list[Problem], role: Role) -> None:
    weak_follow, weak_right = await follow_rate("Mixtral-8x7B-Instruct", problems, role)
    strong_follow, strong_right = await follow_rate("Gemini-2.0-Flash", problems, role)
    assert weak_follow > strong_follow
    assert strong_right > weak_right
    assert weak_follow > 0.4


async def test_aggregator_keeps_a_unanimous_right_answer(problems: list[Problem]) -> None:
    backend = SimBackend(ModelSpec(name="Mixtral-8x7B-Instruct"), seed=0)
    grader = grader_for("boxed")
    right = 0
    for p in problems:
        text = await reply_text(backend, req("Mixtral-8x7B-Instruct", p, "aggregator", candidates=(p.reference,) * 3))
        right += same_answer(await grader.extract(p, text), p.reference)
    assert right / len(problems) > 0.8


async def test_debater_uses_its_own_previous_answer(problems: list[Problem]) -> None:
    backend = SimBackend(ModelSpec(name="Llama-3.1-8B-Instruct"), seed=0)
    grader = grader_for("boxed")
    kept = 0
    for p in problems:
        w = a_wrong_answer(p)
        meta: dict[str, Any] = {"candidates": (None, None), "extra": {"own_answer": w}}
        text = await reply_text(backend, req("Llama-3.1-8B-Instruct", p, "debater", **meta))
        kept += same_answer(await grader.extract(p, text), w)
    # No candidates to follow: it keeps its own wrong answer unless it knows better.
    assert kept / len(problems) > 0.3


TOOLS = ("search_for_youtube_search", "get_video_details", "list_channels")
GOLD_CALL = 'Action: search_for_youtube_search\nAction Input: {"q": "comedy", "c": "US"}'


async def test_tool_use_roles_follow_the_card_accuracies(problems: list[Problem]) -> None:
    card = load_cards().card("Qwen2.5-7B-Instruct")
    backend = SimBackend(ModelSpec(name="Qwen2.5-7B-Instruct"), seed=0)
    p = problems[0]
    n = 400
    plan_right = tool_right = hallucinated = 0
    for i in range(n):
        gold_plan = "I will search for comedy videos. Next: caller."
        text = await reply_text(backend, req("Qwen2.5-7B-Instruct", p, "planner", i=i, extra={"gold_next": gold_plan}))
        assert text.rstrip().endswith(("Next: caller.", "Next: conclusion.", "Next: give up."))
        plan_right += text.rstrip().endswith("Next: caller.")
        meta: dict[str, Any] = {"extra": {"gold_next": GOLD_CALL}, "tools": TOOLS}
        text = await reply_text(backend, req("Qwen2.5-7B-Instruct", p, "caller", i=i, **meta))
        head, _, args = text.partition("\nAction Input: ")
        assert head.startswith("Action: ")
        assert isinstance(json.loads(args), dict)
        tool = head.removeprefix("Action: ")
        tool_right += tool == TOOLS[0]
        hallucinated += tool not in TOOLS
    assert abs(plan_right / n - card.tool_use.plan_acc) < 0.06
    # act_em is metric-level (plan right AND tool right); the caller alone is right act_em / plan_acc of the time.
    assert abs(tool_right / n - card.tool_use.act_em / card.tool_use.plan_acc) < 0.07
    assert hallucinated / n < 0.06
    summary = await reply_text(
        backend, req("Qwen2.5-7B-Instruct", p, "summarizer", extra={"gold_next": "Here are five comedy videos."})
    )
    assert summary and set(summary.split()) <= set(["Here", "are", "five", "comedy", "videos."])


class _FastMathGrader:
    """The real MATH extraction and exact fast path (no sympy pool), for an in-process orchestrator run."""

    async def extract(self, problem: Problem, text: str) -> str | None:
        from datasets.grading.math import extract_boxed

        return extract_boxed(text)

    async def equivalent(self, problem: Problem, a: str, b: str) -> bool:
        from datasets.grading.math import fast_equiv

        return bool(fast_equiv(a, b))

    async def grade(self, problem: Problem, text: str) -> Any:
        return await grader_for("boxed").grade(problem, text)


async def run_orchestrators(problems: list[Problem], seed: int) -> list[str]:
    from orchestrators.base import Collaborators
    from orchestrators.dispatch import run_orchestrator
    from protocols.config import DebateConfig, MavConfig, MoAConfig, OrchestratorConfig, SlmMuxConfig

    trio = ("Llama-3.1-8B-Instruct", "Mixtral-8x7B-Instruct", "Gemma-2-27B-Instruct")
    collab = Collaborators(
        models={n: SimBackend(ModelSpec(name=n), seed) for n in trio}, grader=_FastMathGrader(), seed=seed
    )
    configs: list[OrchestratorConfig] = [
        SlmMuxConfig(models=trio, k=3),
        MoAConfig(proposers=trio, aggregator=trio[2]),
        DebateConfig(models=trio, rounds=2),
        MavConfig(proposers=trio, verifiers=trio),
    ]
    out = []
    for config in configs:
        for p in problems[:25]:
            outcome = await run_orchestrator(config, p, collab)
            out.append(outcome.model_dump_json())
    return out


async def test_orchestrator_runs_are_identical_for_a_seed_and_differ_across_seeds(problems: list[Problem]) -> None:
    first = await run_orchestrators(problems, 0)
    assert first == await run_orchestrators(problems, 0)
    assert first != await run_orchestrators(problems, 1)


class _SureWorld(World):
    """A world in which the model is equally sure (``q``) of whatever answer it holds."""

    def __init__(self, q: float) -> None:
        super().__init__(load_cards())
        self.q = q

    def answer_prob(self, card: Any, facts: Any, temperature: float, answer: str | None) -> float:
        return self.q


def test_without_discrimination_a_collaborator_cannot_see_whether_its_own_answer_is_right(
    problems: list[Problem],
) -> None:
    from actors.backends.sim.roles import decide

    world = _SureWorld(0.8)
    cards = world.cards
    world.cards = cards.model_copy(update={"behaviour": cards.behaviour.model_copy(update={"discrimination": 0.0})})
    card = world.cards.card("Mixtral-8x7B-Instruct")
    held = n = 0
    for p in problems[:50]:
        facts = world.facts(p)
        if len(facts.shared_wrong) < 2:
            continue
        wrong, other = facts.shared_wrong[:2]
        for i in range(4):
            key, base = (0, p.id, i), (0, p.id, "base", i)
            kept_right = decide(world, card, facts, 0.3, (other, other), p.reference, key, base) == p.reference
            kept_wrong = decide(world, card, facts, 0.3, (other, other), wrong, key, base) == wrong
            # Equally sure of a right and of a wrong answer, and blind to rightness: equally often kept.
            held += kept_right - kept_wrong
            n += 1
    assert abs(held) <= 0.1 * n


@pytest.mark.parametrize(("q", "m_small", "m_large"), [(1.0, 1, 3), (0.6, 1, 2), (0.9, 2, 3)])
def test_surer_models_hold_more_and_larger_majorities_erode_it(
    problems: list[Problem], q: float, m_small: int, m_large: int
) -> None:
    from actors.backends.sim.roles import decide

    def hold_rate(world: World, m: int) -> float:
        card = world.cards.card("Gemma-2-27B-Instruct")
        kept = n = 0
        for p in problems:
            facts = world.facts(p)
            for i in range(3):
                key, base = (1, p.id, i), (1, p.id, "base", i)
                kept += decide(world, card, facts, 0.3, ("0.123",) * m, p.reference, key, base) == p.reference
                n += 1
        return kept / n

    assert hold_rate(_SureWorld(q), m_small) > hold_rate(_SureWorld(q), m_large)
    assert hold_rate(_SureWorld(q), m_small) > hold_rate(_SureWorld(q / 3), m_small)


async def test_a_verifier_that_cannot_solve_the_problem_accepts_the_right_answer_less(
    problems: list[Problem],
) -> None:
    model = "Mixtral-8x7B-Instruct"
    backend = SimBackend(ModelSpec(name=model), seed=0)
    grader = grader_for("boxed")
    accepted = {True: 0, False: 0}
    seen = {True: 0, False: 0}
    for p in problems:
        solved = (await grader.grade(p, await reply_text(backend, req(model, p, "solver")))).correct
        text = await reply_text(backend, req(model, p, "verifier", target=p.reference))
        seen[solved] += 1
        accepted[solved] += text.endswith("Verdict: CORRECT")
    # Judging against its own solution, it accepts the right answer less often when its own differs.
    assert accepted[False] / seen[False] < accepted[True] / seen[True] - 0.1
