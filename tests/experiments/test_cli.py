"""Every ``slmsim`` command, through the installed ``slmsim`` entry point: one help style, one error style.

``--help`` prints argparse's usage under the prog ``slmsim <command>`` and exits 0; a bad
input is one line ``slmsim <command>: error: <what>`` on stderr naming the bad value, exit 2,
and nothing written. The commands come from the dispatcher's table, so a new command must
get a bad input here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from experiments.cli import COMMANDS

SLMSIM = Path(sys.executable).with_name("slmsim")
MISSING = "/nonexistent/slmsim-test/config.yaml"
MISSING_POOL = "/nonexistent/slmsim-test/pool"

# command -> (arguments after the command, a piece of the error line naming the bad value)
BAD_INPUT: dict[str, tuple[list[str], str]] = {
    "run": ([MISSING], MISSING),
    "report": (["/nonexistent/slmsim-test/run"], "/nonexistent/slmsim-test/run"),
    "demo": (["--problems", "many"], "'many'"),
    "compare": ([MISSING], MISSING),
    "scale": ([MISSING], MISSING),
    "pool": ([MISSING], MISSING),
    "pool-merge": (["/nonexistent/slmsim-test/out", MISSING_POOL, MISSING_POOL + "2"], MISSING_POOL),
    "sweep": ([MISSING], MISSING),
    "select": ([MISSING], MISSING),
    "stack-search": ([MISSING], MISSING),
    "alpha-umi": (["run", MISSING], MISSING),
    "calibrate": (["--holdout"], "--holdout"),
    "validate-sim": (["--benchmark", "gpqa9"], "'gpqa9'"),
    "serve-sim": (["--port", "eighty"], "'eighty'"),
    "local-llm": (["serve", "--threads", "two"], "'two'"),
}


def slmsim(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert SLMSIM.is_file(), f"the slmsim entry point is not installed next to {sys.executable}"
    return subprocess.run([str(SLMSIM), *args], capture_output=True, text=True, timeout=120, cwd=cwd, check=False)


def test_every_command_has_a_bad_input_case() -> None:
    assert set(BAD_INPUT) == set(COMMANDS)


def test_top_level_help_lists_every_command(tmp_path: Path) -> None:
    done = slmsim("--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: slmsim ")
    for name, command in COMMANDS.items():
        assert name in done.stdout and command.help in " ".join(done.stdout.split()), name


def test_an_unknown_command_is_one_line_exit_2(tmp_path: Path) -> None:
    done = slmsim("frobnicate", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert done.stderr.startswith("slmsim: error: ") and "'frobnicate'" in done.stderr


@pytest.mark.parametrize("command", list(COMMANDS))
def test_help_has_the_one_style(command: str, tmp_path: Path) -> None:
    done = slmsim(command, "--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: slmsim {command}"), done.stdout[:200]
    assert "options:" in done.stdout and "-h, --help" in done.stdout
    assert not done.stderr.strip(), done.stderr


@pytest.mark.parametrize("command", list(COMMANDS))
def test_bad_input_is_one_line_exit_2_and_nothing_written(command: str, tmp_path: Path) -> None:
    args, needle = BAD_INPUT[command]
    done = slmsim(command, *args, cwd=tmp_path)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"slmsim {command}: error: "), lines[0]
    assert needle in lines[0], lines[0]
    assert not list(tmp_path.iterdir()), "a rejected input must write nothing"


def test_overrides_after_an_option_are_read_as_overrides(tmp_path: Path) -> None:
    """``slmsim run CONFIG --no-progress key=value``: the override after the option reaches the config
    check (which names the misspelt key), not argparse's "unrecognized arguments"."""
    config = Path(__file__).resolve().parents[2] / "experiments" / "configs" / "demo_synthetic.yaml"
    done = slmsim("run", str(config), "--no-progress", "orchestratr.k=3", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "unknown key 'orchestratr'" in done.stderr, done.stderr
    assert "unrecognized arguments" not in done.stderr
    assert not list(tmp_path.iterdir()), "a rejected input must write nothing"
