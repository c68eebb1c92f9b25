"""One simulated world a process and card set: shared by every model's backend, and changing no reply."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.backends.sim import SimBackend, load_cards
from actors.backends.sim import world as world_module
from actors.backends.sim.world import WORLDS_KEPT, World
from datasets.math500 import load_math500
from protocols.config import ModelSpec
from protocols.messages import ChatMessage, CompletionRequest, Problem, RequestMeta

NAMES = ("Llama-3.1-8B-Instruct", "Mixtral-8x7B-Instruct", "Gemma-2-27B-Instruct")


def request(model: str, problem: Problem, sample_index: int) -> CompletionRequest:
    return CompletionRequest(
        model=model,
        messages=(ChatMessage(role="user", content=problem.question),),
        temperature=0.7,
        sample_index=sample_index,
        meta=RequestMeta(problem_id=problem.id, role="solver", problem=problem),
    )


async def test_the_models_of_a_process_share_one_world_and_reply_as_with_their_own(
    shared_datasets: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    problems = load_math500(shared_datasets / "math500" / "test.jsonl")[:40]
    # A fresh world: an earlier test in this process may have built these problems' facts already.
    monkeypatch.setattr(world_module, "_WORLDS", type(world_module._WORLDS)())
    shared = [SimBackend(ModelSpec(name=n), seed=3) for n in NAMES]
    assert all(b.world is shared[0].world for b in shared)
    private = [SimBackend(ModelSpec(name=n), seed=3) for n in NAMES]
    for backend in private:
        backend.world = World(backend.cards)
    built = 0
    original = World._build_facts

    def counting(self: World, problem: Problem) -> object:
        nonlocal built
        built += self is shared[0].world
        return original(self, problem)

    World._build_facts = counting  # type: ignore[assignment,method-assign]
    try:
        for problem in problems:  # interleaved over the models, as a runner's orchestrator calls them
            for i in range(2):
                for a, b in zip(shared, private, strict=True):
                    mine = request(a.spec.name, problem, i)
                    assert await a.complete(mine) == await b.complete(mine)
    finally:
        World._build_facts = original  # type: ignore[method-assign]
    assert built == len(problems), "each problem's facts built once for the three models"


def test_other_cards_get_their_own_world_and_a_process_keeps_a_bounded_number() -> None:
    cards = load_cards()
    default = SimBackend(ModelSpec(name=NAMES[0]), seed=0).world
    variants = [
        cards.model_copy(update={"behaviour": cards.behaviour.model_copy(update={"stickiness": 1.0 + i})})
        for i in range(WORLDS_KEPT + 2)
    ]
    worlds = [SimBackend(ModelSpec(name=NAMES[0]), seed=0, cards=v).world for v in variants]
    assert len({id(w) for w in worlds}) == len(variants) and default not in worlds
    assert all(w.cards is v for w, v in zip(worlds, variants, strict=True))
    assert len(world_module._WORLDS) <= WORLDS_KEPT
