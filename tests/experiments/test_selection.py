"""Model-selection search on hand-made pools: the exact definitions of union and contradiction, ranking."""

from __future__ import annotations

import pytest

from experiments.studies.slm_mux.config import SelectionSpec, SplitSpec, StudyConfig
from experiments.studies.slm_mux.sample_pool import split_ids
from experiments.studies.slm_mux.selection import (
    fold_of,
    mux_cross_validated,
    offers_of,
    render,
    search,
    union_contradiction,
    write_report,
)
from protocols.config import ModelSpec, RunSpec
from tests.experiments.slm_pool_fakes import entry, pool_of

# Four problems, three models, k=3; label 0 is always the right answer.
TABLE = [
    # A right; B consistently wrong (3/3 on 1); C abstains   -> union, contradiction (A,B)
    entry("q1", {"A": [0, 0, 2], "B": [1, 1, 1], "C": [None, None, None]}),
    # nobody right; B consistently wrong                      -> neither
    entry("q2", {"A": [1, 2, 3], "B": [4, 4, 4], "C": [5, 5, 6]}),
    # only C right; A wrong but unsure (2/3)                  -> union with C, no contradiction at tau=1
    entry("q3", {"A": [1, 1, 0], "B": [0, 2, 2], "C": [0, 0, 0]}),
    # A right with 1/3 (1-1-1 tie, earliest draw); C consistently wrong
    entry("q4", {"A": [0, 1, 2], "B": [3, 4, 4], "C": [5, 5, 5]}),
]


@pytest.mark.parametrize(
    ("subset", "tau", "union", "contradiction"),
    [
        (("A", "B"), 1.0, 2 / 4, 1 / 4),  # q1, q4 right; q1 has B sure-and-wrong
        (("A", "C"), 1.0, 3 / 4, 1 / 4),  # q1, q3, q4 right; q4 has C sure-and-wrong
        (("B", "C"), 1.0, 1 / 4, 0.0),  # q3 right (C); no sure-wrong model on q3
        (("A", "B", "C"), 1.0, 3 / 4, 2 / 4),
        (("A", "C"), 2 / 3, 3 / 4, 2 / 4),  # tau 2/3: A's 2/3 wrong answer on q3 now counts
    ],
)
def test_union_and_contradiction_follow_their_definitions(subset, tau, union, contradiction) -> None:
    offers = offers_of(TABLE, ("A", "B", "C"), 3)
    assert union_contradiction(TABLE, subset, offers, tau) == pytest.approx((union, contradiction))


def test_folds_are_stable_and_cover_every_fold() -> None:
    folds = {fold_of(f"p{i}", 5, 0) for i in range(100)}
    assert folds == set(range(5))
    assert fold_of("p7", 5, 0) == fold_of("p7", 5, 0)


def test_cross_validated_mux_accuracy_is_a_mean_over_folds() -> None:
    entries = [entry(f"p{i}", {"A": [0, 0, 0], "B": [1, 1, 2]}) for i in range(30)]
    mean, sd = mux_cross_validated(entries, ("A", "B"), 3, 5, 0)
    assert (mean, sd) == (1.0, 0.0)


def _study(tmp_path, **selection) -> StudyConfig:
    return StudyConfig(
        name="t",
        models=tuple(ModelSpec(name=m) for m in ("A", "B", "C")),
        split=SplitSpec(validation_fraction=0.5, seed=0),
        selection=SelectionSpec(sizes=(2, 3), k=3, folds=3, **selection),
        run=RunSpec(out_dir=tmp_path),
    )


def _pool():
    ids = [f"p{i}" for i in range(60)]
    entries = []
    for n, pid in enumerate(ids):
        # A and B complementary (each right on alternate problems, never sure when wrong);
        # C always sure of a wrong answer
        a = [0, 0, 1] if n % 2 else [1, 2, 3]
        b = [4, 5, 6] if n % 2 else [0, 0, 7]
        entries.append(entry(pid, {"A": a, "B": b, "C": [9, 9, 9]}))
    return pool_of(entries, 3), ids


def test_search_ranks_complementary_models_first_and_uses_validation_only(tmp_path) -> None:
    pool, ids = _pool()
    report = search(pool, _study(tmp_path))
    assert [r.models for r in report.ranked][:1] == [("A", "B")]
    assert len(report.ranked) == 3 + 1  # C(3,2) + C(3,3)
    top = report.ranked[0]
    assert (top.union, top.contradiction, top.score) == (1.0, 0.0, 1.0)
    with_c = next(r for r in report.ranked if r.models == ("A", "C"))
    assert with_c.contradiction == pytest.approx(with_c.union)  # C is sure-and-wrong wherever A is right
    val_ids, _ = split_ids(ids, 0.5, 0)
    assert report.n_validation == len(val_ids) and report.n_test == 60 - len(val_ids)
    assert report.chosen == ("A", "B") and report.chosen_test_accuracy == 1.0
    text = render(report)
    assert "model_calls: 0" in text and "A + B" in text and "best subset of each size" in text
    paths = write_report(report, tmp_path)
    assert all(p.exists() for p in paths)


def test_direct_objective_and_bad_settings(tmp_path) -> None:
    pool, _ = _pool()
    report = search(pool, _study(tmp_path, objective="mux_cv"))
    assert report.ranked[0].mux_cv >= max(r.mux_cv for r in report.ranked)
    with pytest.raises(ValueError, match="exceeds the pool's k=3"):
        search(pool, _study(tmp_path).model_copy(update={"selection": SelectionSpec(k=4)}))
    with pytest.raises(ValueError, match="no subset size"):
        search(pool, _study(tmp_path).model_copy(update={"selection": SelectionSpec(sizes=(5,))}))
