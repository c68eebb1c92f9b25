"""CPU seconds used by this process and every process below it (Ray's GCS, raylet, workers, graders).

Wall-clock rates on a shared machine measure the other tenants as much as the code;
CPU seconds per completion do not. A thread samples ``/proc/<pid>/stat`` (user + system
time) of the process tree every ``period_s`` and keeps each process's last value, so a
process that exits during the measurement (an actor killed at the end of a run) still
counts up to its last sample.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from benchmarks.driver_memory import descendants

TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime (fields 14, 15 of stat)


class CpuMeter:
    """``with CpuMeter() as meter: ...`` then ``meter.seconds``: CPU used by the tree meanwhile."""

    def __init__(self, period_s: float = 0.25) -> None:
        self.period_s = period_s
        self._start: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _sample(self, baseline: bool = False) -> None:
        me = os.getpid()
        for pid in [me, *(p for p, _ in descendants(me))]:
            used = cpu_s(pid)
            self._start.setdefault(pid, used if baseline else 0.0)
            self._last[pid] = max(used, self._last.get(pid, 0.0))

    def _loop(self) -> None:
        while not self._stop.wait(self.period_s):
            self._sample()

    def __enter__(self) -> CpuMeter:
        self._sample(baseline=True)  # what everything alive now had used; later processes start at 0
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    @property
    def seconds(self) -> float:
        return sum(self._last[pid] - self._start.get(pid, 0.0) for pid in self._last)
