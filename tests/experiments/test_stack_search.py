"""The stacking search on fake scores: warm-up stops when the score stops strictly improving,
stacking stops at a plateau, candidates of a layer run concurrently, configs validate."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from experiments.runtime.config_io import ConfigError
from experiments.studies.stacking.config import load_search_config
from experiments.studies.stacking.search import train_sample
from experiments.studies.stacking.tables import markdown_table
from orchestrators.stacking_search import Evaluation, layer_candidates, max_overlap, rank_key, stack, warm_up
from orchestrators.stacking_structure import Node, agent, parse_structure, render, x_k

REPO = Path(__file__).resolve().parents[2]


class FakeEvaluator:
    """Scores from a table keyed by notation (default 0); records calls and how many ran at once."""

    def __init__(self, scores: dict[str, float]) -> None:
        self.scores = scores
        self.calls: list[tuple[str, str]] = []
        self.running = 0
        self.peak = 0

    async def __call__(self, tree: Node, phase: str) -> Evaluation:
        text = render(tree)
        self.calls.append((text, phase))
        self.running += 1
        self.peak = max(self.peak, self.running)
        await asyncio.sleep(0.01)
        self.running -= 1
        score = self.scores.get(text, 0.0)
        return Evaluation(structure=text, phase=phase, layer=0, score=score, n=20, correct=int(20 * score))


def ev(structure: str, score: float, tokens: int = 0) -> Evaluation:
    return Evaluation(structure=structure, phase="x", layer=0, score=score, n=20, correct=0, total_tokens=tokens)


@pytest.mark.parametrize(
    ("scores", "levels"),
    [
        ([0.5, 0.6, 0.7, 0.65], 4),  # improves twice, the drop at X_3 is reported and stops it
        ([0.5, 0.5], 2),  # equal is not an improvement
        ([0.5, 0.4], 2),
        ([0.1, 0.2, 0.3, 0.4, 0.5], 5),  # bounded by max_level=4 (X_0..X_4)
    ],
)
async def test_warm_up_stops_when_not_strictly_improving(scores: list[float], levels: int) -> None:
    table = {render(x_k("M", k)): s for k, s in enumerate(scores)}
    fake = FakeEvaluator(table)
    got = await warm_up("M", fake, max_level=4)
    assert [e.score for e in got] == scores[:levels]
    assert [c[0] for c in fake.calls] == [render(x_k("M", k)) for k in range(levels)]


def test_layer_candidates_anchor_on_the_best_of_top_n() -> None:
    pool = [ev("A", 0.7), ev("B", 0.8), ev("C", 0.6), ev("D", 0.5), ev("E", 0.1)]
    got = [render(c) for c in layer_candidates(pool, top_n=4, tool_number=2)]
    assert got == ["Agent[B, A]@B", "Agent[B, C]@B", "Agent[B, D]@B"]
    three = [render(c) for c in layer_candidates(pool, top_n=4, tool_number=3)]
    assert three == ["Agent[B, A, C]@B", "Agent[B, A, D]@B", "Agent[B, C, D]@B"]
    # The anchor's orchestrator is its base model, also for an agent anchor.
    anchored = layer_candidates([ev("Agent[A, A]@A", 0.9), ev("B", 0.5)], top_n=5, tool_number=2)
    assert render(anchored[0]) == "Agent[Agent[A, A]@A, B]@A"


def test_rank_ties_go_to_fewer_tokens_then_notation() -> None:
    rows = [ev("B", 0.5, 100), ev("A", 0.5, 100), ev("C", 0.5, 50), ev("D", 0.6, 999)]
    assert [r.structure for r in sorted(rows, key=rank_key)] == ["D", "C", "A", "B"]


async def test_stack_adds_layers_until_a_plateau() -> None:
    pool = [ev("A", 0.6), ev("B", 0.5), ev("C", 0.4)]
    l1 = "Agent[A, B]@A"
    scores = {l1: 0.7, "Agent[A, C]@A": 0.65, f"Agent[{l1}, Agent[A, C]@A]@A": 0.7}
    fake = FakeEvaluator(scores)
    result = await stack(pool, fake, top_n=3, tool_number=2, max_layers=5)
    assert [len(layer) for layer in result.layers] == [2, 2]
    assert result.winner.structure == l1 and result.winner.score == 0.7
    assert result.stop_reason == "plateau at layer 2"
    assert fake.peak == 2  # both candidates of a layer were in flight together
    assert {c[1] for c in fake.calls} == {"layer_1", "layer_2"}


async def test_stack_keeps_the_warm_up_best_when_layer_one_does_not_beat_it() -> None:
    pool = [ev("A", 0.6), ev("B", 0.5)]
    result = await stack(pool, FakeEvaluator({"Agent[A, B]@A": 0.6}), top_n=5, tool_number=2, max_layers=5)
    assert result.winner.structure == "A" and result.stop_reason == "plateau at layer 1"


async def test_stack_is_bounded_by_max_layers() -> None:
    pool = [ev("A", 0.1), ev("B", 0.05)]

    class Improving(FakeEvaluator):
        async def __call__(self, tree: Node, phase: str) -> Evaluation:
            got = await super().__call__(tree, phase)
            return got.model_copy(update={"score": 0.1 + 0.1 * int(phase.split("_")[1])})

    result = await stack(pool, Improving({}), top_n=5, tool_number=2, max_layers=3)
    assert len(result.layers) == 3 and result.stop_reason == "max_layers=3"


async def test_stack_with_a_single_entry_has_no_candidates() -> None:
    result = await stack([ev("A", 0.5)], FakeEvaluator({}), top_n=5, tool_number=2, max_layers=3)
    assert result.layers == [] and result.winner.structure == "A" and result.stop_reason == "no new candidates"


def test_max_overlap() -> None:
    rows = [
        Evaluation(structure=s, phase="p", layer=0, score=0, n=1, correct=0, started_at=a, ended_at=b)
        for s, a, b in [("a", 0, 10), ("b", 1, 5), ("c", 4, 12), ("d", 11, 13)]
    ]
    assert max_overlap(rows) == 3
    assert max_overlap(rows[3:]) == 1


def test_train_sample_is_seeded_and_ordered() -> None:
    items = list(range(100))
    a, b = train_sample(items, 20, seed=0), train_sample(items, 20, seed=0)
    assert a == b == sorted(a) and len(set(a)) == 20
    assert train_sample(items, 20, seed=1) != a
    with pytest.raises(ValueError, match="exceeds"):
        train_sample(items, 101, seed=0)


def test_markdown_table_lists_every_row_with_tokens_by_layer() -> None:
    layered = ev("Agent[A]@A", 0.75).model_copy(
        update={"per_layer": {"layer_1": {"total_tokens": 30}, "layer_0": {"total_tokens": 12}}}
    )
    text = markdown_table([ev("A", 0.5), layered], "T", {"base_model": ["A", "A"]})
    assert "| A | `Agent[A]@A` | 0 | 0.750 |" in text and text.count("\n|") == 4
    assert "| 12/30 |" in text


@pytest.mark.parametrize("name", ["stacking_math500.yaml", "stacking_fixed.yaml", "stacking_gpqa.yaml"])
def test_shipped_configs_validate(name: str) -> None:
    config = load_search_config(REPO / "experiments" / "configs" / name)
    assert config.stacking.max_steps == 15
    if config.search.fixed_structure:
        tree = parse_structure(config.search.fixed_structure, known=[m.name for m in config.models])
        assert render(tree).startswith("Agent[")


def test_acceptance_config_knobs() -> None:
    config = load_search_config(REPO / "experiments" / "configs" / "stacking_math500.yaml")
    s = config.search
    assert (s.top_n, s.tool_number, s.train_data_number, s.baseline) == (5, 2, 20, "GPT-4o")
    assert len(s.base_models) == 5 and config.dataset.name == "math500"
    assert all(m.backend == "sim" for m in config.models)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("search.baseline=Nope-1B", "unknown model"),
        ("search.tool_number=1", "tool_number"),
        ("search.fixed_structure=Agent[Nope]", "unknown model 'Nope'"),
        ("search.bogus=1", "unknown key"),
    ],
)
def test_bad_configs_fail_with_a_named_reason(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_search_config(REPO / "experiments" / "configs" / "stacking_math500.yaml", [override])


def test_agent_helper_defaults_to_anchor_model() -> None:
    assert render(agent([x_k("M", 1), x_k("N", 0)])) == "Agent[Agent[M]@M, N]@M"


def test_candidate_run_ids_do_not_depend_on_the_search_directory(tmp_path: Path) -> None:
    from experiments.runtime.driver import run_id_of
    from experiments.studies.stacking.search import SearchDriver

    config = load_search_config(REPO / "experiments" / "configs" / "stacking_math500.yaml")
    tree = x_k("Qwen2.5-72B-Instruct", 1)
    ids = set()
    for out in (tmp_path / "a", tmp_path / "b"):
        driver = SearchDriver(config, out, pool=None, log=None, train=[1, 2, 3])
        experiment = driver.experiment(tree, "warmup", test=False)
        assert experiment.run.out_dir.is_relative_to(out)
        assert experiment.orchestrator.reuse_answers  # search reuses; the test run does not
        assert not driver.experiment(tree, "test", test=True).orchestrator.reuse_answers
        ids.add(run_id_of(experiment))
    assert len(ids) == 1
