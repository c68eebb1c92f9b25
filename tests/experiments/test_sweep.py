"""Sweeps computed from a hand-made pool: the same decision rules, no model calls, k chosen on validation."""

from __future__ import annotations

import pytest

from experiments.studies.slm_mux.config import SplitSpec, StudyConfig, SweepSpec
from experiments.studies.slm_mux.sample_pool import split_ids
from experiments.studies.slm_mux.sweep import (
    Point,
    choose_k,
    evaluate,
    first_k,
    forest_correct,
    mux_correct,
    run_sweep,
    sample_accuracy,
    sc_correct,
    write_report,
)
from protocols.config import ModelSpec, RunSpec
from tests.experiments.slm_pool_fakes import entry, pool_of

VAL = {"A": 0.7, "B": 0.5, "C": 0.3}


@pytest.mark.parametrize(
    ("samples", "correct", "val", "expected"),
    [
        ({"A": [0, 1, 2], "B": [1, 1, 1]}, [1], VAL, True),  # B is sure and right
        ({"A": [0, 1, 2], "B": [1, 1, 1]}, [0], VAL, False),  # B is sure and wrong: MUX follows it
        ({"A": [0, 0, 2], "B": [1, 1, 3]}, [0], VAL, True),  # 2/3 vs 2/3: A's validation accuracy wins
        ({"A": [0, 0, 2], "B": [1, 1, 3]}, [1], VAL, False),
        ({"A": [None, None, 0], "B": [1, 1, None]}, [1], VAL, True),  # abstentions count in k: 1/3 < 2/3
        ({"A": [None, None, None], "B": [None, None, None]}, [0], VAL, False),  # all invalid
    ],
)
def test_mux_correct_table(samples, correct, val, expected) -> None:
    assert mux_correct(entry("p", samples, correct), tuple(samples), 3, val) is expected


def test_mux_uses_only_the_first_k_samples() -> None:
    e = entry("p", {"A": [0, 1, 1, 1], "B": [2, 2, 0, 0]}, [0])
    assert mux_correct(e, ("A", "B"), 1, VAL)  # k=1: tie 1/1 vs 1/1 -> A (val) answers 0
    assert not mux_correct(e, ("A", "B"), 3, VAL)  # k=3: A 2/3 on 1, B 2/3 on 2 -> A (val) answers 1


def test_forest_and_self_consistency_differ_from_mux_where_they_should() -> None:
    # A sure of a wrong answer (3x label 1); B and C split but agree on the right one twice
    e = entry("p", {"A": [1, 1, 1], "B": [0, 2, 3], "C": [0, 4, 5]}, [0])
    assert not mux_correct(e, ("A", "B", "C"), 3, VAL)
    assert not forest_correct(e, ("A", "B", "C"), 3)  # 3 votes for 1 beat 2 for 0
    assert sc_correct(e, "B", 3)  # 1-1-1 tie -> earliest draw, which is right


def test_evaluate_counts_tokens_of_the_samples_it_reads() -> None:
    es = [entry(f"p{i}", {"A": [0, 0, 1], "B": [1, 1, 1]}, [0], tokens=10) for i in range(4)]
    p = evaluate(es, "slm_mux", ("A", "B"), 2, VAL, "test")
    assert p.tokens == 4 * 2 * 2 * 10 and p.calls == 16 and p.tokens_per_problem == 40
    single = evaluate(es, "single", ("A",), 3, VAL, "test")
    assert single.accuracy == pytest.approx(2 / 3) and single.tokens == 4 * 10
    with pytest.raises(ValueError, match="unknown sweep method"):
        evaluate(es, "oracle", ("A",), 1, VAL, "test")


def test_first_k_refuses_more_samples_than_stored() -> None:
    with pytest.raises(ValueError, match="k=4 but the pool holds 3"):
        first_k(entry("p", {"A": [0, 0, 0]}), "A", 4)
    assert sample_accuracy([entry("p", {"A": [0, 1, None]})], "A") == pytest.approx(1 / 3)


def _point(k: int, acc: float) -> Point:
    return Point(
        method="slm_mux",
        models=("A",),
        k=k,
        split="validation",
        n=10,
        correct=acc * 10,
        accuracy=acc,
        ci95_low=0,
        ci95_high=1,
        tokens=0,
        tokens_per_problem=0,
        cost_usd=0,
        calls=0,
    )


def test_choose_k_prefers_the_smaller_k_on_ties() -> None:
    assert choose_k([_point(1, 0.5), _point(3, 0.7), _point(5, 0.7)]) == 3


def _study(tmp_path, models=("A", "B")) -> StudyConfig:
    return StudyConfig(
        name="t",
        models=tuple(ModelSpec(name=m) for m in models),
        split=SplitSpec(validation_fraction=0.5, seed=0),
        sweep=SweepSpec(),
        run=RunSpec(out_dir=tmp_path),
    )


def test_k_is_chosen_on_validation_not_on_test(tmp_path) -> None:
    ids = [f"p{i}" for i in range(40)]
    val_ids, _ = split_ids(ids, 0.5, 0)
    entries = []
    for pid in ids:
        if pid in val_ids:  # on validation k=1 is right and k=3 is wrong
            entries.append(entry(pid, {"A": [0, 1, 1], "B": [2, 3, 4]}, [0]))
        else:  # on test the opposite
            entries.append(entry(pid, {"A": [0, 1, 1], "B": [2, 3, 4]}, [1]))
    report = run_sweep(pool_of(entries, 3), _study(tmp_path))
    assert report.chosen_k == 1
    assert report.model_calls == 0 and report.pool_model_calls == 40 * 2 * 3
    test_k3 = next(p for p in report.by_k if p.split == "test" and p.method == "slm_mux" and p.k == 3)
    assert test_k3.accuracy == 1.0  # the test optimum exists but was not used to choose k
    assert {p.split for p in report.by_models} == {"test"}
    assert [len(p.models) for p in report.by_models if p.method == "slm_mux"] == [1, 2]
    assert {p.k for p in report.by_models} == {1}  # each point's k also chosen on validation
    paths = write_report(report, tmp_path)
    assert all(p.exists() and p.stat().st_size > 0 for p in paths)
    assert "model_calls: 0" in (tmp_path / "sweep.md").read_text()


def test_sweep_rejects_models_not_in_the_pool(tmp_path) -> None:
    entries = [entry(f"p{i}", {"A": [0], "B": [0]}) for i in range(10)]
    study = _study(tmp_path).model_copy(update={"sweep": SweepSpec(models=("A", "Z"))})
    with pytest.raises(ValueError, match=r"\['Z'\]"):
        run_sweep(pool_of(entries, 1), study)
