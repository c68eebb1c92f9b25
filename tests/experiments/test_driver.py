"""The driver end to end on Ray: run directory contract, resume after SIGKILL, same-seed determinism."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from experiments.runtime.config_io import load_config
from experiments.runtime.driver import run_experiment
from protocols.messages import ProblemResult
from tests.experiments.kill_resume import kill_after, run_to_end, slmsim

pytestmark = [pytest.mark.ray, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "experiments" / "configs" / "demo_synthetic.yaml"


def _lines(run_dir: Path) -> list[ProblemResult]:
    return [ProblemResult.model_validate_json(x) for x in (run_dir / "results.jsonl").read_text().splitlines()]


def _last_run(run_dir: Path) -> list[dict]:
    """The log events of the latest run in a directory (from its run_start on)."""
    events = [json.loads(x) for x in (run_dir / "log.jsonl").read_text().splitlines()]
    starts = [i for i, e in enumerate(events) if e["event"] == "run_start"]
    return events[starts[-1] :]


def _strip_timing(text: str) -> list[dict]:
    rows = []
    for line in text.splitlines():
        row = json.loads(line)
        row.pop("wall_s")
        rows.append(row)
    return rows


def test_run_directory_contract(ray_session: None, tmp_path: Path) -> None:
    config = load_config(CONFIG, [f"run.out_dir={tmp_path / 'run'}", "dataset.limit=40", "run.progress=false"])
    summary = run_experiment(config)
    run_dir = tmp_path / "run"
    for name in ("config.yaml", "results.jsonl", "summary.json", "log.jsonl"):
        assert (run_dir / name).is_file(), name
    results = _lines(run_dir)
    assert [r.index for r in results] == list(range(40))
    assert summary.n == 40 and summary.n_expected == 40
    assert summary.sources.get("sim", 0) > 0 and set(summary.sources) == {"sim"}
    assert summary.ci95_low <= summary.accuracy <= summary.ci95_high
    assert summary.calls == sum(r.totals.calls for r in results)
    events = [json.loads(x)["event"] for x in (run_dir / "log.jsonl").read_text().splitlines()]
    assert events[0] == "run_start" and events[-1] == "run_end" and events.count("problem_done") == 40
    # Resume of a finished run does nothing and changes nothing: the resume record says no
    # problem was evaluated (a recomputation would log problem_done; the call-counting
    # version against a real HTTP server is in test_reliability_ray.py).
    before = (run_dir / "results.jsonl").read_text()
    again = run_experiment(config)
    assert again.n == 40 and again.calls == summary.calls
    assert _strip_timing((run_dir / "results.jsonl").read_text()) == _strip_timing(before)
    second = _last_run(run_dir)
    assert second[0]["already_done"] == 40 and not any(e["event"] == "problem_done" for e in second)


def test_same_seed_same_results_other_seed_differs(ray_session: None, tmp_path: Path) -> None:
    texts = []
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        config = load_config(
            CONFIG, [f"run.out_dir={tmp_path / name}", "dataset.limit=30", f"seed={seed}", "run.progress=false"]
        )
        run_experiment(config)
        texts.append(_strip_timing((tmp_path / name / "results.jsonl").read_text()))
    assert texts[0] == texts[1]
    assert texts[0] != texts[2]


def test_sigkill_mid_run_then_resume_gives_each_problem_once(tmp_path: Path) -> None:
    out = tmp_path / "run"
    n = 40  # enough to kill with most problems open; the resume record says what was recomputed
    args = slmsim(
        "run", str(CONFIG), f"run.out_dir={out}", f"dataset.limit={n}", "run.progress=false",
        "run.problems_in_flight=2", "run.runners=1",
        # Real sleeping (simulated latency x 0.05) makes the run long enough to kill early.
        *(f"models.{i}.time_scale=0.05" for i in range(3)),
    )  # fmt: skip
    partial = kill_after(args, out / "results.jsonl", 12)
    assert 0 < partial < n, f"kill landed at {partial} results; the test needs a mid-run kill"
    # Same command; only execution knobs differ (no sleeping, more in flight), which resume allows.
    done = run_to_end([*args, "run.problems_in_flight=32", *(f"models.{i}.time_scale=0" for i in range(3))])
    assert done.returncode == 0, done.stderr[-2000:]
    final = _lines(out)
    ids = [r.problem_id for r in final]
    assert len(ids) == n and len(set(ids)) == n
    assert [r.index for r in final] == list(range(n))
    # The resume record: the re-run evaluated exactly the problems that had no result, and
    # no finished one again (a recomputed one is logged as a duplicate, its result dropped).
    resumed = _last_run(out)
    assert resumed[0]["already_done"] == partial
    assert sum(e["event"] == "problem_done" for e in resumed) == n - partial
    assert [e["problem_id"] for e in resumed if e["event"] == "problem_duplicate"] == []
