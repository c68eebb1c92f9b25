"""Config loading: YAML + overrides, one-line errors naming the bad key or value."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from experiments.runtime.config_io import ConfigError, apply_overrides, load_config

GOOD = """
name: t
dataset: {name: synthetic, limit: 10}
models:
  - {name: A, backend: sim, card: Qwen2.5-7B-Instruct}
  - {name: B, backend: sim, card: Qwen2.5-3B-Instruct}
orchestrator: {kind: slm_mux, models: [A, B], k: 3}
run: {out_dir: OUT}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text.replace("OUT", str(tmp_path / "run")))
    return path


def test_good_config_and_overrides(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, GOOD), ["orchestrator.k=5", "dataset.limit=20", "models.1.backend=replay"])
    assert config.orchestrator.k == 5  # type: ignore[union-attr]
    assert config.dataset.limit == 20
    assert config.models[1].backend == "replay"


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        (["orchestrator.kk=5"], "unknown key 'orchestrator.slm_mux.kk'"),
        (["dataset.limit=many"], "dataset.limit"),
        (["dataset.path=/no/such/file.jsonl"], "'/no/such/file.jsonl' does not exist"),
        (["orchestrator.models=[A, Z]"], "unknown model(s) ['Z']"),
        (["models.0.backend=gpt"], "models.0.backend"),
        (["orchestrator.kind=nope"], "orchestrator"),
        (["limit"], "not of the form key=value"),
        (["models.7.name=x"], "no list item '7'"),
    ],
)
def test_bad_configs_fail_with_one_line_naming_the_problem(tmp_path: Path, overrides: list[str], needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, GOOD), overrides)
    message = str(info.value)
    assert needle in message
    assert "\n" not in message


def test_a_bad_only_model_is_named_once_not_also_as_an_empty_list(tmp_path: Path) -> None:
    one = _write(tmp_path, GOOD.replace("  - {name: B, backend: sim, card: Qwen2.5-3B-Instruct}\n", ""))
    one.write_text(one.read_text().replace("models: [A, B]", "models: [A]"))
    with pytest.raises(ConfigError) as info:
        load_config(one, ["models.0.max_retries=30"])
    # pydantic also reports the tuple as too short (its one item failed); that second error misleads.
    assert str(info.value) == "invalid config: models.0.max_retries: Input should be less than or equal to 20 (got 30)"
    with pytest.raises(ConfigError, match="models: Tuple should have at least 1 item"):
        load_config(one, ["models=[]"])  # a list that is really empty still says so


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        load_config(bad)


def test_override_values_are_yaml() -> None:
    tree: dict = {"a": {"b": 1}}
    apply_overrides(tree, ["a.b=[1, 2]", "a.c=true", "d=x"])
    assert tree == {"a": {"b": [1, 2], "c": True}, "d": "x"}


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("dataset.bogus=1", "invalid config: unknown key 'dataset.bogus'"),
        ("orchestrator.k=three", "invalid config: orchestrator.slm_mux.k"),
        ("dataset.path=/definitely/missing.jsonl", "'/definitely/missing.jsonl' does not exist"),
        ("dataset.name=gpqa", "GPQA is not redistributed"),  # no CSV supplied: a dataset error, not a traceback
    ],
)
def test_cli_rejects_bad_config_fast_and_writes_nothing(tmp_path: Path, override: str, needle: str) -> None:
    path = _write(tmp_path, GOOD)
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.cli", "run", str(path), override],
        capture_output=True,
        text=True,
        # A hang guard, not a speed bound: ~0.9 s of CPU, but 10-19 s of wall at load 13-15 on 2 cores.
        timeout=120,
    )
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("slmsim run: error: ") and needle in lines[0]
    assert not (tmp_path / "run").exists()
