"""Every bad input is one line, exit 2, and nothing written: configs, datasets, out_dirs, run directories.

Run in-process through ``experiments.cli.main`` (the same code path as the ``slmsim``
binary, minus interpreter start-up). Each case snapshots the whole temporary tree
before and after: "nothing written" means byte for byte.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from experiments.cli import main

REPO = Path(__file__).resolve().parents[2]

RUN = """
name: t
dataset: {name: synthetic, limit: 5}
models:
  - {name: A, backend: sim, card: Qwen2.5-7B-Instruct}
  - {name: B, backend: sim, card: Qwen2.5-3B-Instruct}
orchestrator: {kind: slm_mux, models: [A, B], k: 3}
run: {out_dir: OUT, progress: false}
"""
MATH_LINE = (
    json.dumps(
        {
            "problem": "1+1?",
            "solution": "\\boxed{2}",
            "answer": "2",
            "subject": "Algebra",
            "level": 1,
            "unique_id": "t/1",
        }
    )
    + "\n"
)


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() if p.is_file() else b"<dir>" for p in sorted(root.rglob("*"))}


Setup = Callable[[Path], list[str]]


def _config(tmp: Path, text: str = RUN, name: str = "c.yaml") -> Path:
    path = tmp / name
    path.write_text(text.replace("OUT", str(tmp / "run")))
    return path


def _run(*overrides: str, text: str = RUN) -> Setup:
    def setup(tmp: Path) -> list[str]:
        return ["run", str(_config(tmp, text)), *(o.replace("TMP", str(tmp)) for o in overrides)]

    return setup


def _file(name: str, data: bytes, *overrides: str) -> Setup:
    def setup(tmp: Path) -> list[str]:
        (tmp / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp / name).write_bytes(data)
        return ["run", str(_config(tmp)), *(o.replace("TMP", str(tmp)) for o in overrides)]

    return setup


def _raw_config(data: bytes) -> Setup:
    def setup(tmp: Path) -> list[str]:
        (tmp / "c.yaml").write_bytes(data)
        return ["run", str(tmp / "c.yaml")]

    return setup


def _existing_run(results: bytes, config_yaml: bytes | None = None) -> Setup:
    """A run directory left by an earlier run of the same experiment, then damaged."""

    def setup(tmp: Path) -> list[str]:
        from experiments.runtime.config_io import dump_config, load_config

        path = _config(tmp)
        run = tmp / "run"
        run.mkdir()
        (run / "config.yaml").write_text(dump_config(load_config(path)))
        if config_yaml is not None:
            (run / "config.yaml").write_bytes(config_yaml)
        (run / "results.jsonl").write_bytes(results)
        return ["run", str(path)]

    return setup


def _other_experiment(tmp: Path) -> list[str]:
    from experiments.runtime.config_io import dump_config, load_config

    path = _config(tmp)
    (tmp / "run").mkdir()
    (tmp / "run" / "config.yaml").write_text(dump_config(load_config(path, ["seed=7"])))
    return ["run", str(path)]


def _study(tmp: Path, extra: str = "") -> Path:
    text = f"""
name: s
dataset: {{name: synthetic, limit: 5}}
models:
  - {{name: A, backend: sim, card: Qwen2.5-7B-Instruct}}
pool: {{k: 2}}
run: {{out_dir: {tmp / "run"}, progress: false}}
{extra}
"""
    path = tmp / "s.yaml"
    path.write_text(text)
    return path


def _search(tmp: Path, *overrides: str) -> list[str]:
    text = f"""
name: ss
dataset: {{name: synthetic, limit: 5}}
models:
  - {{name: A, backend: sim, card: Qwen2.5-7B-Instruct}}
  - {{name: B, backend: sim, card: Qwen2.5-3B-Instruct}}
search: {{base_models: [A, B], train_data_number: 3}}
run: {{out_dir: {tmp / "run"}, progress: false}}
"""
    path = tmp / "ss.yaml"
    path.write_text(text)
    return ["stack-search", str(path), *(o.replace("TMP", str(tmp)) for o in overrides)]


def _compare(tmp: Path, *overrides: str) -> list[str]:
    text = f"""
base:
  name: cmp
  dataset: {{name: synthetic, limit: 5}}
  models:
    - {{name: A, backend: sim, card: Qwen2.5-7B-Instruct}}
  run: {{out_dir: {tmp / "run"}, progress: false}}
methods:
  - {{kind: single, model: A, label: single}}
  - {{kind: self_consistency, model: A, k: 3, label: sc}}
"""
    path = tmp / "cmp.yaml"
    path.write_text(text)
    return ["compare", str(path), *(o.replace("TMP", str(tmp)) for o in overrides)]


CASES: dict[str, tuple[Setup, str]] = {
    # config files
    "config missing": (lambda t: ["run", str(t / "nope.yaml")], "does not exist"),
    "config not YAML": (_raw_config(b"name: [unclosed\n"), "not valid YAML at line"),
    "config invalid UTF-8": (_raw_config(b"name: t\nmodels: \xff\xfe\n"), "not valid UTF-8 at line 2"),
    "config a list": (_raw_config(b"- a\n- b\n"), "mapping at the top level"),
    "config a directory": (lambda t: ["run", str(t)], "does not exist"),
    "unknown key": (_run("dataset.bogus=1"), "unknown key 'dataset.bogus'"),
    "wrong type": (_run("orchestrator.k=three"), "orchestrator.slm_mux.k"),
    "k out of range": (_run("orchestrator.k=0"), "orchestrator.slm_mux.k"),
    "temperature out of range": (_run("orchestrator.temperature=9"), "temperature"),
    "negative limit": (_run("dataset.limit=-1"), "dataset.limit"),
    "unknown orchestrator": (_run("orchestrator.kind=nope"), "orchestrator"),
    "unknown model in orchestrator": (_run("orchestrator.models=[A,C]"), "unknown model(s) ['C']"),
    "duplicate model names": (_run("models.1.name=A", "orchestrator.models=[A]"), "duplicate name"),
    "unknown backend": (_run("models.0.backend=nope"), "models.0.backend"),
    "openai without base_url": (_run("models.0.backend=openai"), "needs base_url"),
    "unknown dataset": (_run("dataset.name=nope"), "dataset.name"),
    "override without =": (_run("dataset.limit"), "not of the form key=value"),
    "override bad YAML": (_run("dataset.limit=[1"), "not valid YAML"),
    "override list index": (_run("models.9.name=x"), "no list item '9'"),
    # checked before Ray: cards, keys
    "unknown sim card": (_run("models.0.card=NoSuchCard"), "unknown sim card 'NoSuchCard'"),
    "unset api_key_env": (
        _run(
            "models.0.backend=openai",
            "models.0.base_url=http://127.0.0.1:9/v1",
            "models.0.api_key_env=SLMSIM_TEST_NEVER_SET",
        ),
        "'SLMSIM_TEST_NEVER_SET' (api_key_env) is not set",
    ),
    # datasets
    "dataset path missing": (_run("dataset.path=/definitely/missing.jsonl"), "does not exist"),
    "gpqa without CSV": (_run("dataset.name=gpqa"), "GPQA is not redistributed"),
    "synthetic with a path": (_run("dataset.path=TMP"), "dataset.path must be unset"),
    "math500 unknown split": (_run("dataset.name=math500", "dataset.split=train"), "only a 'test' split"),
    "dataset path a directory without the file": (
        _file("data/readme.txt", b"x", "dataset.name=math500", "dataset.path=TMP/data"),
        "test.jsonl",
    ),
    "dataset invalid UTF-8": (
        _file("d.jsonl", MATH_LINE.encode() + b'{"a": "\xff"}\n', "dataset.name=math500", "dataset.path=TMP/d.jsonl"),
        "d.jsonl:2: not valid UTF-8",
    ),
    "dataset bad JSON line": (
        _file("d.jsonl", MATH_LINE.encode() + b"{oops\n", "dataset.name=math500", "dataset.path=TMP/d.jsonl"),
        "d.jsonl:2",
    ),
    "dataset missing field": (
        _file("d.jsonl", b'{"problem": "1+1?"}\n', "dataset.name=math500", "dataset.path=TMP/d.jsonl"),
        "d.jsonl:1",
    ),
    "dataset empty gsm8k line": (
        _file("g.jsonl", b'{"question": "q"}\n', "dataset.name=gsm8k", "dataset.path=TMP/g.jsonl"),
        "g.jsonl:1",
    ),
    # output directories
    "out_dir is a file": (_file("afile", b"x", "run.out_dir=TMP/afile"), "exists and is not a directory"),
    "out_dir under a file": (_file("afile", b"x", "run.out_dir=TMP/afile/run"), "is not a directory"),
    "out_dir read-only": (_run("run.out_dir=/proc/slmsim-run"), "not writable"),
    "store path under a file": (
        _file("afile", b"x", "store.mode=record", "store.path=TMP/afile/store"),
        "store.path",
    ),
    # existing run directories
    "bad line inside results.jsonl": (
        _existing_run(b"{}\n{also bad}\n{}\n"),
        "results.jsonl:1: not a valid result line",
    ),
    "run dir holds another experiment": (_other_experiment, "holds a different experiment"),
    "run dir config.yaml not UTF-8": (_existing_run(b"", config_yaml=b"\xff\xfe"), "unreadable config.yaml"),
    # other commands
    "report of a non-run directory": (lambda t: ["report", str(t)], "is not a run directory"),
    "pool unknown card": (lambda t: ["pool", str(_study(t)), "models.0.card=NoSuchCard"], "unknown sim card"),
    "pool out_dir a file": (
        lambda t: (t.joinpath("f").write_text("x"), ["pool", str(_study(t)), f"run.out_dir={t / 'f'}"])[1],
        "not a directory",
    ),
    "sweep without a pool": (lambda t: ["sweep", str(_study(t))], "pool"),
    "select without a pool": (lambda t: ["select", str(_study(t))], "pool"),
    "stack-search train_data_number too large": (
        lambda t: _search(t, "search.train_data_number=50"),
        "train_data_number=50 exceeds",
    ),
    "stack-search bad dataset": (
        lambda t: (
            t.joinpath("d.jsonl").write_bytes(b"{oops\n"),
            _search(t, "dataset.name=math500", "dataset.path=TMP/d.jsonl"),
        )[1],
        "d.jsonl:1",
    ),
    "stack-search unknown card": (lambda t: _search(t, "models.1.card=NoSuchCard"), "unknown sim card"),
    "stack-search invalid UTF-8 config": (
        lambda t: (t.joinpath("x.yaml").write_bytes(b"\xff"), ["stack-search", str(t / "x.yaml")])[1],
        "not valid UTF-8",
    ),
    "compare unknown card": (lambda t: _compare(t, "base.models.0.card=NoSuchCard"), "unknown sim card"),
    "compare out_dir unwritable": (lambda t: _compare(t, "base.run.out_dir=/proc/slmsim-cmp"), "not writable"),
    "compare invalid UTF-8 config": (
        lambda t: (t.joinpath("x.yaml").write_bytes(b"base: \xff"), ["compare", str(t / "x.yaml")])[1],
        "not valid UTF-8",
    ),
    "compare bad dataset": (
        lambda t: (
            t.joinpath("d.jsonl").write_bytes(b"\xff\n"),
            _compare(t, "base.dataset.name=math500", "base.dataset.path=TMP/d.jsonl"),
        )[1],
        "d.jsonl:1: not valid UTF-8",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_exit_2_and_nothing_written(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SLMSIM_TEST_NEVER_SET", raising=False)
    setup, needle = CASES[case]
    argv = setup(tmp_path)
    before = _snapshot(tmp_path)
    code = main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1, err
    command = argv[0]
    assert lines[0].startswith(f"slmsim {command}: error: "), lines[0]
    assert needle in lines[0], lines[0]
    assert _snapshot(tmp_path) == before, "a rejected input must leave the directory exactly as it was"


HOLD = """
import sys, time
from pathlib import Path
from experiments.runtime.lock import hold
with hold(Path(sys.argv[1]), "slmsim run t"):
    print("held", flush=True)
    time.sleep(120)
"""


def test_second_driver_on_a_run_directory_refuses_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _config(tmp_path)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path / "run")], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        before = _snapshot(tmp_path)
        code = main(["run", str(path)])
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1, err
        assert f"is in use by pid {holder.pid} on host" in err
        assert _snapshot(tmp_path) == before
        info = json.loads((tmp_path / "run" / ".lock").read_text())
        assert info["pid"] == holder.pid
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
