"""One driver per run directory: an exclusive ``flock`` on ``<dir>/.lock``.

A second driver on the same directory (a second terminal, a cron job, a retried job
submission) would evaluate every problem again and pay twice on a live backend. The
lock is an advisory ``flock`` held for the whole run: the kernel drops it when the
holder dies, however it dies, so a lock left by a killed driver is taken over safely
with no staleness heuristics. The file names its holder (pid, host, command) so the
refusal can say who it is. The same process may take the lock again (a comparison
holds its directory while its runs hold theirs, which may coincide).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

LOCK_FILE = ".lock"


class RunDirBusy(ValueError):
    """Another live driver holds the run directory."""


def _holder(path: Path) -> dict[str, object]:
    with contextlib.suppress(OSError, ValueError):
        data = json.loads(path.read_text() or "{}")
        if isinstance(data, dict):
            return data
    return {}


@contextlib.contextmanager
def hold(run_dir: Path, command: str) -> Iterator[None]:
    """Hold ``run_dir`` exclusively for the block (creating the directory if needed).

    Raises:
        RunDirBusy: another process holds it; the message names its pid and host.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            info = _holder(path)
            if info.get("pid") == os.getpid() and info.get("host") == socket.gethostname():
                yield  # re-entrant: this process already holds it through another descriptor
                return
            who = f"pid {info.get('pid', '?')} on host {info.get('host', '?')} ({info.get('command', '?')})"
            raise RunDirBusy(
                f"run directory {str(run_dir)!r} is in use by {who}; wait for it to finish or choose another out_dir"
            ) from None
        record = {"pid": os.getpid(), "host": socket.gethostname(), "command": command, "since": time.time()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
