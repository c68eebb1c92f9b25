"""The recorded pool of the real Gemma 3 270M (tests/fixtures/pool_gemma270m): loads with read_pool, has its shape.

It is the live counterpart of simulated pools, for fitting a card to a real model
(``calibrate --from``); see the fixture's README.md for how it was recorded.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from experiments.studies.slm_mux.config import load_study
from experiments.studies.slm_mux.sample_pool import read_pool

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "pool_gemma270m"
TEMPERATURES = ("0.3", "0.8")


@pytest.mark.parametrize("temperature", TEMPERATURES)
def test_recorded_pool_loads_and_has_the_recorded_shape(temperature: str) -> None:
    study = load_study(FIXTURE / "study.yaml", [f"pool.temperature={temperature}"])
    pool = read_pool(FIXTURE / f"t{temperature}", study)  # also checks models, k, T, seed, dataset
    assert pool.meta.models == ("gemma-3-270m",) and pool.meta.k == 5
    assert pool.meta.n_problems == len(pool.entries) == 40
    # 5 replayed: "What is 4 * 6?" is in the problems twice, and the store served its repeat (README.md).
    assert pool.meta.sources == {"live": 195, "replay": 5} and pool.meta.model_calls == 200
    assert [e.index for e in pool.entries] == list(range(40))
    for entry in pool.entries:
        samples = entry.samples["gemma-3-270m"]
        assert [s.i for s in samples] == [0, 1, 2, 3, 4]
        assert all(s.source in ("live", "replay") and s.error is None and s.completion_tokens > 0 for s in samples)
        for s in samples:
            assert s.correct == (s.label is not None and s.label in entry.correct_labels)
            assert (s.label is None) == (s.answer is None)


@pytest.mark.parametrize("temperature", TEMPERATURES)
def test_recorded_pool_is_partly_right_and_its_samples_differ(temperature: str) -> None:
    pool = read_pool(FIXTURE / f"t{temperature}")
    samples = [s for e in pool.entries for s in e.samples["gemma-3-270m"]]
    accuracy = sum(s.correct for s in samples) / len(samples)
    assert 0.05 < accuracy < 0.95, accuracy  # problems it partly solves: informative for a fit
    # k real draws, not one reply five times (a run seed sent for every sample would do that).
    varied = sum(len({s.answer for s in e.samples["gemma-3-270m"]}) > 1 for e in pool.entries)
    assert varied >= 5, varied


def cochran_q(columns: list[int], totals: list[int]) -> float:
    """Cochran's Q of "every sample index is right equally often" (chi2 with k - 1 df if so).

    It depends on the data only through how often each index is right (``columns``) and how
    many samples of each problem are right (``totals``).
    """
    k, n = len(columns), sum(totals)
    return (k - 1) * (k * sum(c * c for c in columns) - n * n) / (k * n - sum(t * t for t in totals))


def margins(temperature: str) -> tuple[list[int], list[int]]:
    pool = read_pool(FIXTURE / f"t{temperature}")
    rows = [[s.correct for s in e.samples["gemma-3-270m"]] for e in pool.entries]
    return [sum(r[j] for r in rows) for j in range(5)], [sum(r) for r in rows]


@pytest.mark.parametrize("temperature", TEMPERATURES)
def test_sample_j_is_not_one_draw_shared_by_every_problem(temperature: str) -> None:
    # With one wire seed per sample index on every problem, llama.cpp made the samples at one
    # index correlated across problems. Independent draws give Q ~ chi2(4).
    assert cochran_q(*margins(temperature)) < 13.28  # its 1% critical value


def test_cochran_q_flags_the_first_recording() -> None:
    # The first T=0.8 recording (README.md): sample 0 right on 15 of 40 problems, sample 1 on 1.
    totals = [0] * 17 + [1] * 11 + [2] * 5 + [3] * 6 + [4]
    assert cochran_q([15, 1, 5, 13, 9], totals) == pytest.approx(23.02, abs=0.01)
    assert cochran_q([4, 4, 4, 4, 4], [1] * 20) == 0.0  # every index alike


def test_higher_temperature_spreads_the_answers() -> None:
    def classes_per_problem(temperature: str) -> float:
        pool = read_pool(FIXTURE / f"t{temperature}")
        return sum(len({s.label for s in e.samples["gemma-3-270m"]}) for e in pool.entries) / len(pool.entries)

    assert classes_per_problem("0.8") > classes_per_problem("0.3")
