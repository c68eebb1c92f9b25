"""Kill a CLI run with SIGKILL halfway, then finish it with the same command: the resume tests' two steps."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def slmsim(*args: str) -> list[str]:
    """The command line of ``slmsim ARGS`` run from this checkout."""
    return [sys.executable, "-m", "experiments.cli", *args]


def kill_after(args: Sequence[str], results: Path, lines: int, deadline_s: float = 480) -> int:
    """Start ``args``, SIGKILL it once ``results`` holds ``lines`` lines; the number of lines it left.

    The wait ends at the event; the deadline only bounds a stalled run (on a loaded machine Ray's
    start-up alone can take minutes, and a kill at the deadline with nothing written fails the test).
    """
    proc = subprocess.Popen(args, cwd=REPO, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if results.exists() and len(results.read_bytes().splitlines()) >= lines:
            break
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return len(results.read_bytes().splitlines())


def run_to_end(args: Sequence[str], timeout_s: float = 480) -> subprocess.CompletedProcess[str]:
    """Run ``args`` to completion (the resume), capturing its output."""
    return subprocess.run(list(args), cwd=REPO, env=ENV, capture_output=True, text=True, timeout=timeout_s)
