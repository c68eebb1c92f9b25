"""Nothing lost: transient failures are not final, one driver per run directory, checks before Ray.

No Ray here: the results writer, failure typing, the run-directory lock, the preflight
checks and Ray start-up retry are tested on their own (the fault probes on Ray are in
``test_reliability_ray.py``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.runtime.config_io import ConfigError, config_from_tree
from experiments.runtime.errors import RunAborted
from experiments.runtime.lock import RunDirBusy, hold
from experiments.runtime.preflight import check_models, check_writable_dir, first_bad_utf8_line, load_dataset
from experiments.runtime.results import ResultsWriter, is_final, latest, read_results, summarize
from protocols.config import DatasetSpec, ModelSpec, StoreSpec
from protocols.messages import (
    CallRecord,
    Completion,
    Failure,
    FailureKind,
    ProblemResult,
    ToolCallRecord,
    Usage,
    totals_of,
    transient_failure,
)

REPO = Path(__file__).resolve().parents[2]


def _result(i: int, error: Failure | None = None, trace_failure: Failure | None = None) -> ProblemResult:
    reply: Completion | Failure = trace_failure or Completion(model="m", text="t", source="sim")
    return ProblemResult(
        run_id="r",
        problem_id=f"p{i}",
        index=i,
        benchmark="synthetic",
        orchestrator="single",
        reference="1",
        correct=error is None and trace_failure is None,
        error=error,
        trace=(CallRecord(model="m", role="solver", reply=reply),),
    )


TRANSIENT: list[tuple[FailureKind, bool]] = [
    ("connection", False),
    ("timeout", False),
    ("rate_limit", False),
    ("server", False),
    ("actor", False),
    ("malformed", True),  # a malformed HTTP body: the backend marks it retryable
]
PERMANENT: list[tuple[FailureKind, bool]] = [
    ("client", False),
    ("config", False),
    ("grading", False),
    ("malformed", False),  # no sample had an extractable answer: the model's doing
    ("replay_miss", False),
    ("steps_exhausted", False),
    ("internal", False),
]


@pytest.mark.parametrize(("kind", "retryable"), TRANSIENT)
def test_transient_failures_are_not_final(kind: FailureKind, retryable: bool) -> None:
    failure = Failure(error=kind, message="x", retryable=retryable)
    assert failure.transient
    assert not is_final(_result(0, error=failure))


@pytest.mark.parametrize(("kind", "retryable"), PERMANENT)
def test_permanent_failures_are_final(kind: FailureKind, retryable: bool) -> None:
    failure = Failure(error=kind, message="x", retryable=retryable)
    assert not failure.transient
    assert is_final(_result(0, error=failure))


def test_an_answer_computed_around_a_failed_call_is_not_final() -> None:
    # e.g. SLM-MUX answered from one model because the other's calls hit the outage
    outage = Failure(error="connection", message="refused", retryable=True)
    assert transient_failure(_result(0, trace_failure=outage)) == outage
    inner = (CallRecord(model="m", role="agent", reply=outage),)
    nested = ToolCallRecord(tool="B_0", query="q", answer=None, trace=inner)
    result = _result(1).model_copy(update={"trace": (nested,)})
    assert transient_failure(result) == outage
    tool_error = ToolCallRecord(tool="B_0", query="q", answer=None, error=outage)
    assert transient_failure(_result(2).model_copy(update={"trace": (tool_error,)})) == outage


def test_open_result_is_superseded_once_and_final_one_never(tmp_path: Path) -> None:
    outage = Failure(error="server", message="HTTP 503", retryable=True)
    writer = ResultsWriter(tmp_path)
    assert writer.append(_result(0, error=outage))
    assert writer.append(_result(1))
    writer.close()
    resumed = ResultsWriter(tmp_path)
    assert resumed.done_ids == {"p1"} and resumed.open_ids == {"p0"}
    assert resumed.append(_result(0)), "the retry's answer supersedes the open failure"
    assert not resumed.append(_result(0)), "a final result is never replaced"
    assert not resumed.append(_result(1, error=outage))
    resumed.finalize()
    assert [(r.problem_id, r.error) for r in resumed.kept()] == [("p0", None), ("p1", None)]
    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    assert len(lines) == 2, "finalize keeps exactly one line per problem"


def test_latest_prefers_first_final_then_last_open() -> None:
    a = Failure(error="server", message="a", retryable=True)
    b = Failure(error="timeout", message="b", retryable=True)
    kept = latest([_result(0, error=a), _result(0, error=b), _result(1), _result(1, error=a)])
    assert kept["p0"].error == b and kept["p1"].error is None


def test_retry_failed_reopens_permanent_failures_too(tmp_path: Path) -> None:
    writer = ResultsWriter(tmp_path)
    writer.append(_result(0, error=Failure(error="client", message="HTTP 401")))
    writer.append(_result(1))
    writer.close()
    assert ResultsWriter(tmp_path).done_ids == {"p0", "p1"}
    again = ResultsWriter(tmp_path, retry_failed=True)
    assert again.done_ids == {"p1"}
    assert again.append(_result(0))
    again.close()


def test_summary_counts_open_failures_and_missing_problems() -> None:
    outage = Failure(error="connection", message="refused", retryable=True)
    results = [_result(0, error=outage), _result(1, error=Failure(error="client", message="400")), _result(2)]
    s = summarize(results, run_id="r", name="n", orchestrator="single", dataset="synthetic", n_expected=5)
    assert (s.errors, s.open_failures, s.missing) == (2, 1, 2)


def test_replayed_completions_report_no_retries() -> None:
    recorded = Completion(model="m", text="t", source="live", attempts=3, usage=Usage(completion_tokens=1))
    replayed = recorded.model_copy(update={"source": "replay"})
    assert totals_of([CallRecord(model="m", role="solver", reply=recorded)]).retries == 2
    assert totals_of([CallRecord(model="m", role="solver", reply=replayed)]).retries == 0


def test_bad_line_inside_results_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    path.write_text(_result(0).model_dump_json() + "\n{oops}\n" + _result(1).model_dump_json() + "\n")
    with pytest.raises(ValueError, match=r"results.jsonl:2: not a valid result line") as info:
        read_results(path)
    assert "\n" not in str(info.value)


# --- one driver per run directory -------------------------------------------------

HOLDER = """
import sys, time
from pathlib import Path
from experiments.runtime.lock import hold
with hold(Path(sys.argv[1]), "slmsim run holder"):
    print("held", flush=True)
    time.sleep(120)
"""


def _holder(run_dir: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(run_dir)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_second_driver_is_refused_naming_the_holder_and_a_killed_holders_lock_is_taken_over(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    proc = _holder(run_dir)
    try:
        busy = pytest.raises(RunDirBusy, match=rf"in use by pid {proc.pid} on host .+slmsim run holder")
        with busy, hold(run_dir, "second"):
            pass
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # a driver killed mid-run leaves its lock file behind
        proc.wait()
    assert (run_dir / ".lock").exists()
    # The kernel released the dead holder's lock: taken over; and re-entrant within one process.
    with hold(run_dir, "third"), hold(run_dir, "same process again"):
        pass


# --- checks before Ray --------------------------------------------------------------


def test_unknown_card_and_unset_key_are_found_before_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=r"model 'x': unknown sim card 'NoSuchCard'"):
        check_models([ModelSpec(name="x", card="NoSuchCard")], StoreSpec())
    monkeypatch.delenv("SLMSIM_TEST_UNSET_KEY", raising=False)
    live = ModelSpec(name="l", backend="openai", base_url="http://127.0.0.1:9/v1", api_key_env="SLMSIM_TEST_UNSET_KEY")
    with pytest.raises(ConfigError, match=r"'SLMSIM_TEST_UNSET_KEY' \(api_key_env\) is not set"):
        check_models([live], StoreSpec())
    check_models([live], StoreSpec(mode="replay", path=Path("/nonexistent")))  # replay needs no key
    monkeypatch.setenv("SLMSIM_TEST_UNSET_KEY", "k")
    check_models([live], StoreSpec())


def test_out_dir_that_cannot_be_a_writable_directory_is_refused(tmp_path: Path) -> None:
    afile = tmp_path / "file"
    afile.write_text("x")
    with pytest.raises(ConfigError, match="exists and is not a directory"):
        check_writable_dir(afile)
    with pytest.raises(ConfigError, match="is not a directory"):
        check_writable_dir(afile / "run")
    with pytest.raises(ConfigError, match="not writable"):
        check_writable_dir(Path("/proc/slmsim-run"))  # read-only even for root
    check_writable_dir(tmp_path / "new" / "run")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"], "a check writes nothing"


def test_dataset_errors_name_the_file_and_line(tmp_path: Path) -> None:
    good = '{"problem": "1+1?", "solution": "\\\\boxed{2}", "answer": "2", "subject": "Algebra", "level": 1}\n'
    bad = tmp_path / "test.jsonl"
    bad.write_bytes(good.encode() + b'{"problem": "\xff\xfe"}\n')
    assert first_bad_utf8_line(bad) == 2
    from datasets import DatasetError

    with pytest.raises(DatasetError, match=r"test.jsonl:2: not valid UTF-8"):
        load_dataset(DatasetSpec(name="math500", path=bad))
    with pytest.raises(DatasetError, match=r"test.jsonl:2: not valid UTF-8"):
        load_dataset(DatasetSpec(name="math500", path=tmp_path))  # a directory holding the bad file
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError):
        load_dataset(DatasetSpec(name="math500", path=empty))


def test_ray_start_failure_is_retried_then_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import ray

    from experiments.runtime import spawn as rayrt

    calls = []

    def failing_init(*args: object, **kwargs: object) -> None:
        calls.append(kwargs)
        raise TimeoutError("The current node timed out during startup.\nsecond line")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", failing_init)
    with pytest.raises(RunAborted) as info:
        rayrt.ensure_ray(None, attempts=3, wait_s=0.0)
    assert len(calls) == 3
    message = str(info.value)
    assert "\n" not in message and "could not start a local Ray instance after 3 attempts" in message
    assert "--address" in message


def test_experiment_config_still_validates_new_run_knobs() -> None:
    tree = {
        "models": [{"name": "m", "card": "Qwen2.5-7B-Instruct"}],
        "orchestrator": {"kind": "single", "model": "m"},
        "run": {"problem_retries": 2, "retry_backoff_s": 0.1, "actor_restarts": 1},
    }
    config = config_from_tree(tree)
    assert (config.run.problem_retries, config.run.actor_restarts) == (2, 1)
    with pytest.raises(ConfigError, match="problem_retries"):
        config_from_tree({**tree, "run": {"problem_retries": -1}})
