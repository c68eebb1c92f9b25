"""``backend: fake`` runs through the real driver, model actors and runners, and says FAKE everywhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from experiments.runtime.config_io import validate_tree
from experiments.runtime.driver import run_experiment
from experiments.runtime.report import report
from experiments.runtime.results import source_label
from protocols.config import ExperimentConfig

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def config(out: Path, fake: dict[str, object], **orchestrator: object) -> ExperimentConfig:
    tree = {
        "dataset": {"name": "synthetic", "limit": 12},
        "models": [{"name": "a", "backend": "fake", "fake": fake}, {"name": "b", "backend": "fake", "fake": fake}],
        "orchestrator": {"kind": "slm_mux", "models": ["a", "b"], "k": 3, **orchestrator},
        "run": {"out_dir": str(out), "runners": 1, "progress": False, "retry_backoff_s": 0},
    }
    return validate_tree(ExperimentConfig, tree)


def test_gold_and_injected_errors_through_the_driver(ray_session: None, tmp_path: Path) -> None:
    gold = run_experiment(config(tmp_path / "gold", {"reply": "gold"}))
    assert (gold.n, gold.accuracy, gold.errors) == (12, 1.0, 0)
    assert gold.sources == {"fake": 12 * 2 * 3} and source_label(gold) == "FAKE (test double)"
    text = report(tmp_path / "gold")
    assert "FAKE" in text and "SIMULATOR" not in text

    # A third of the calls fail with a 503 on each attempt: the backend's retries ride it out.
    flaky = run_experiment(config(tmp_path / "flaky", {"reply": "gold", "errors": {"server": 0.34}}))
    assert (flaky.accuracy, flaky.open_failures) == (1.0, 0) and flaky.retries > 0
    # Permanent failures on every call: errors counted apart from accuracy, nothing lost.
    broken = run_experiment(config(tmp_path / "broken", {"reply": "gold", "errors": {"client": 1.0}}))
    assert (broken.n, broken.correct, broken.open_failures) == (12, 0, 0)
    assert broken.failed_calls == 12 * 2 * 3
