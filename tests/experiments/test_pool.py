"""The sample pool: grouping across models, correctness, drawing once, the stored round trip, the split."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.backends.fake import FakeBackend
from experiments.studies.slm_mux.config import PoolSpec, StudyConfig, load_study
from experiments.studies.slm_mux.sample_pool import PoolMeta, entry_from_samples, read_pool, split_ids, write_pool
from orchestrators.base import Collaborators
from protocols.config import DatasetSpec, ModelSpec, RunSpec
from protocols.messages import CallRecord, Completion, Problem, Usage
from tests.experiments.slm_pool_fakes import draw_pool_in_process
from tests.orchestrators.slm_fakes import FAIL, PROBLEM, FakeGrader, answers_by_index

CONFIGS = Path(__file__).resolve().parents[2] / "experiments" / "configs"


def _rec(model: str, i: int, text: str | None) -> CallRecord:
    reply = (
        FAIL
        if text is None
        else Completion(
            model=model, text=text, usage=Usage(prompt_tokens=3, completion_tokens=7), cost_usd=0.5, source="sim"
        )
    )
    return CallRecord(model=model, role="solver", sample_index=i, reply=reply)


async def test_entry_groups_equivalent_answers_across_models_and_marks_correct_classes() -> None:
    per_model: dict[str, list[tuple[CallRecord, str | None]]] = {
        "A": [(_rec("A", 0, "x"), "0.5"), (_rec("A", 1, "y"), "3")],
        "B": [(_rec("B", 1, "z"), "\\frac{1}{2}"), (_rec("B", 0, None), None)],
    }
    e = await entry_from_samples(PROBLEM, 4, per_model, FakeGrader())
    assert e.index == 4  # the problem's position, not the last answer class (a shadowed loop variable once)
    assert e.classes == ("0.5", "3") and e.correct_labels == (0,)
    a, b = e.samples["A"], e.samples["B"]
    assert [s.label for s in a] == [0, 1] and [s.correct for s in a] == [True, False]
    assert [s.i for s in b] == [0, 1]  # stored in sample order
    assert (b[0].label, b[0].error, b[0].source) == (None, "server", None)
    assert (b[1].label, b[1].correct, b[1].tokens, b[1].cost_usd) == (0, True, 10, 0.5)


async def test_draw_in_process_then_round_trip_through_disk(tmp_path) -> None:
    problems = [PROBLEM.model_copy(update={"id": f"p{i}"}) for i in range(5)]
    models = {
        "A": FakeBackend(answers_by_index("0.5", "1/2", "2", None), model="A"),
        "B": FakeBackend(answers_by_index("7", "7", "7", "7"), model="B"),
    }
    collab = Collaborators(models=models, grader=FakeGrader(), run_id="pool", seed=1)
    entries, calls = await draw_pool_in_process(problems, collab, ("A", "B"), PoolSpec(k=4, temperature=0.5))
    assert calls == 5 * 2 * 4 and len(models["A"].requests) == 20
    assert all(r.temperature == 0.5 for r in models["A"].requests)
    assert [e.problem_id for e in entries] == [f"p{i}" for i in range(5)]
    assert [e.index for e in entries] == list(range(5))
    assert [s.correct for s in entries[0].samples["A"]] == [True, True, False, False]
    meta = PoolMeta(
        name="t", dataset="math500", models=("A", "B"), k=4, temperature=0.5, seed=0, n_problems=5, model_calls=calls
    )
    write_pool(tmp_path, entries, meta)
    pool = read_pool(tmp_path)
    assert pool.entries == tuple(entries) and pool.meta == meta
    study = StudyConfig(
        name="t",
        models=(ModelSpec(name="A"), ModelSpec(name="B")),
        dataset=DatasetSpec(name="math500"),
        pool=PoolSpec(k=4, temperature=0.5),
        run=RunSpec(out_dir=tmp_path),
    )
    assert read_pool(tmp_path, study).meta.k == 4
    with pytest.raises(ValueError, match="was drawn as"):
        read_pool(tmp_path, study.model_copy(update={"pool": PoolSpec(k=9, temperature=0.5)}))


def test_missing_pool_names_the_command(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="slmsim pool"):
        read_pool(tmp_path)


def test_split_is_disjoint_stable_and_independent_of_order() -> None:
    ids = [f"id{i}" for i in range(1000)]
    val, test = split_ids(ids, 0.3, seed=5)
    assert val.isdisjoint(test) and val | test == set(ids)
    assert 0.25 < len(val) / 1000 < 0.35
    val2, _ = split_ids(list(reversed(ids[:500])), 0.3, seed=5)
    assert val2 == {i for i in val if i in set(ids[:500])}  # subsetting keeps each id's side
    assert split_ids(ids, 0.3, seed=6)[0] != val


@pytest.mark.parametrize("name", ["slm_mux_search", "slm_mux_scaling"])
def test_shipped_study_configs_share_one_pool(name) -> None:
    study = load_study(CONFIGS / f"{name}.yaml")
    assert study.model_names == (
        "Llama-3.1-8B-Instruct",
        "Mixtral-8x7B-Instruct",
        "Gemma-2-27B-Instruct",
        "Mistral-Small-24B-Instruct",
        "Qwen2.5-7B-Instruct",
        "Qwen2.5-3B-Instruct",
        "Llama-3.2-3B-Instruct",
    )
    assert all(m.backend == "sim" for m in study.models)
    other = load_study(CONFIGS / "slm_mux_search.yaml")
    assert (study.run.out_dir, study.pool, study.seed, study.dataset) == (
        other.run.out_dir,
        other.pool,
        other.seed,
        other.dataset,
    )


def test_problem_fixture_is_boxed() -> None:
    assert isinstance(PROBLEM, Problem) and PROBLEM.answer_format == "boxed"


async def test_a_few_shot_pool_sends_plain_prompts_with_stops_for_base_models() -> None:
    from orchestrators.prompts import FEW_SHOT_STOP

    models = {"A": FakeBackend(answers_by_index("0.5", "2"), model="A")}
    collab = Collaborators(models=models, grader=FakeGrader(), run_id="pool", seed=1)
    spec = PoolSpec(k=2, temperature=0.8, prompt_style="few_shot", shots=3)
    entries, _ = await draw_pool_in_process([PROBLEM], collab, ("A",), spec)
    requests = models["A"].requests
    assert [r.sample_index for r in requests] == [0, 1]
    assert all(r.messages == () and r.stop == FEW_SHOT_STOP for r in requests)
    prompt = requests[0].prompt or ""
    assert prompt.count("Question:") == 4 and prompt.endswith(f"Question: {PROBLEM.question}\nAnswer:")
    assert [s.correct for s in entries[0].samples["A"]] == [True, False]
