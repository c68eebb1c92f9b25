"""``slmsim pool-merge``: pools drawn apart become one pool whose answer classes span every model."""

from __future__ import annotations

from pathlib import Path

import pytest

from experiments.studies.slm_mux.pool_merge import merge
from experiments.studies.slm_mux.sample_pool import PoolEntry, PoolMeta, PoolSample, read_pool, write_pool


def _pool(out: Path, model: str, answers: list[list[str | None]], references: list[str], k: int = 3) -> Path:
    entries = []
    for index, (row, reference) in enumerate(zip(answers, references, strict=True)):
        # Labels within this pool only, as a one-model `slmsim pool` writes them.
        classes: list[str] = []
        samples = []
        for i, answer in enumerate(row):
            label = None
            if answer is not None:
                if answer not in classes:
                    classes.append(answer)
                label = classes.index(answer)
            correct = answer is not None and float(answer) == float(reference)
            samples.append(PoolSample(i=i, answer=answer, label=label, correct=correct, source="live"))
        entries.append(
            PoolEntry(
                problem_id=f"gsm8k/test/{index}",
                index=index,
                benchmark="gsm8k",
                reference=reference,
                classes=tuple(classes),
                correct_labels=tuple(j for j, c in enumerate(classes) if float(c) == float(reference)),
                samples={model: tuple(samples)},
            )
        )
    meta = PoolMeta(
        name="p",
        dataset="gsm8k",
        models=(model,),
        k=k,
        temperature=0.3,
        seed=0,
        n_problems=len(entries),
        model_calls=k * len(entries),
        sources={"live": k * len(entries)},
        runs={model: f"runs/{model}"},
        wall_s=10.0,
    )
    write_pool(out, entries, meta)
    return out


def test_merge_regroups_answer_classes_across_models_and_keeps_every_sample(tmp_path: Path) -> None:
    a = _pool(tmp_path / "a", "m-8shot", [["14", "7", "14"], ["30", None, "26"]], ["14", "30"])
    b = _pool(tmp_path / "b", "m-2shot", [["7.0", "14", "9"], ["26", "26", "26"]], ["14", "30"])
    meta = merge([a, b], tmp_path / "ab")
    pool = read_pool(tmp_path / "ab")
    assert meta.models == pool.meta.models == ("m-8shot", "m-2shot")
    assert pool.meta.model_calls == 12 and pool.meta.sources == {"live": 12} and pool.meta.wall_s == 20.0
    assert pool.meta.runs == {"m-8shot": "runs/m-8shot", "m-2shot": "runs/m-2shot"}
    first, second = pool.entries
    # "7" (8-shot) and "7.0" (2-shot) are one answer to the GSM8K grader: one class across models.
    assert first.classes == ("14", "7", "9") and first.correct_labels == (0,)
    assert [s.label for s in first.samples["m-8shot"]] == [0, 1, 0]
    assert [s.label for s in first.samples["m-2shot"]] == [1, 0, 2]
    # The 2-shot member's "26" is the 8-shot member's wrong class, not a class of its own.
    assert second.classes == ("30", "26") and [s.label for s in second.samples["m-2shot"]] == [1, 1, 1]
    assert second.samples["m-8shot"][1].label is None  # an abstention stays one
    for entry in pool.entries:
        for samples in entry.samples.values():
            assert all(s.correct == (s.label in entry.correct_labels) for s in samples if s.label is not None)


def test_merge_refuses_pools_that_are_not_draws_of_the_same_problems(tmp_path: Path) -> None:
    a = _pool(tmp_path / "a", "m1", [["1", "1", "1"]], ["1"])
    other_k = _pool(tmp_path / "k", "m2", [["1", "1"]], ["1"], k=2)
    with pytest.raises(ValueError, match=r"\(k, T, seed, dataset\)"):
        merge([a, other_k], tmp_path / "out")
    other_problem = _pool(tmp_path / "q", "m2", [["1", "1", "1"]], ["2"])
    with pytest.raises(ValueError, match="same order"):
        merge([a, other_problem], tmp_path / "out")
    same_model = _pool(tmp_path / "s", "m1", [["1", "1", "1"]], ["1"])
    with pytest.raises(ValueError, match="'m1' is in both"):
        merge([a, same_model], tmp_path / "out")
    with pytest.raises(ValueError, match="one of the pools"):
        merge([a, same_model], a)
    assert not (tmp_path / "out").exists()


def test_merge_stops_on_a_sample_whose_grade_would_change(tmp_path: Path) -> None:
    a = _pool(tmp_path / "a", "m1", [["14", "14", "14"]], ["14"])
    b = _pool(tmp_path / "b", "m2", [["14", "3", "3"]], ["14"])
    pool = read_pool(b)
    bad = pool.entries[0].samples["m2"][0].model_copy(update={"correct": False})  # a grader that disagreed
    entry = pool.entries[0].model_copy(update={"samples": {"m2": (bad, *pool.entries[0].samples["m2"][1:])}})
    write_pool(b, [entry], pool.meta)
    with pytest.raises(ValueError, match=r"'gsm8k/test/0': 'm2' sample 0 \('14'\) was graded correct=False"):
        merge([a, b], tmp_path / "out")
