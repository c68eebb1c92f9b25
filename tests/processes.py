"""Find and stop the processes a test started, by an environment marker they inherited.

Used instead of ``ray stop``, which would kill every Ray on the machine, including
other people's. Linux only (reads ``/proc``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path
from typing import NamedTuple


class Proc(NamedTuple):
    pid: int
    cmdline: str
    ancestors: tuple[int, ...]


def _parent(pid: int) -> int:
    with contextlib.suppress(OSError, ValueError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[1])
    return 0


def _ancestors(pid: int) -> tuple[int, ...]:
    chain: list[int] = []
    parent = _parent(pid)
    while parent > 1 and len(chain) < 64:
        chain.append(parent)
        parent = _parent(parent)
    return tuple(chain)


def marked_processes(mark: str) -> list[Proc]:
    """Live processes whose environment holds ``mark`` (``NAME=value``)."""
    needle = mark.encode() + b"\0"
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if needle not in (entry / "environ").read_bytes() + b"\0":
                continue
            if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue  # a zombie holds nothing; its parent reaps it
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            pid = int(entry.name)
            found.append(Proc(pid, cmdline, _ancestors(pid)))
    return found


def kill_all(pids: list[int], grace_s: float = 10.0) -> None:
    """SIGTERM, wait up to ``grace_s``, then SIGKILL whatever is left."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in pids):
            time.sleep(0.2)
